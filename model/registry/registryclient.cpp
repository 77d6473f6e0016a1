#include "registry/registryclient.h"

#include "core/secrets.h"
#include "env/environment.h"

#include <QHostAddress>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkReply>
#include <QRegularExpression>
#include <QUrlQuery>

namespace pilothouse {

namespace {
// What a HEAD on a manifest accepts: multi-arch indexes first, then single manifests.
const QByteArray kManifestTypes = "application/vnd.oci.image.index.v1+json, "
                                  "application/vnd.docker.distribution.manifest.list.v2+json, "
                                  "application/vnd.oci.image.manifest.v1+json, "
                                  "application/vnd.docker.distribution.manifest.v2+json";

// No answer of a registry or its token service is read past this: a tags
// page of 100 names or a token is a few KiB.
constexpr qint64 kMaxBodyBytes = 4 << 20;
const char *const kOversize = "pilothouseOversize";

// Aborts a reply whose body grows past the cap; finished() still follows,
// and bodyTooLarge() tells why it ended.
void capBody(QNetworkReply *reply)
{
    QObject::connect(reply, &QNetworkReply::downloadProgress, reply,
                     [reply](qint64 received, qint64 total) {
                         if (received > kMaxBodyBytes || total > kMaxBodyBytes) {
                             reply->setProperty(kOversize, true);
                             reply->abort();
                         }
                     });
}

bool bodyTooLarge(QNetworkReply *reply)
{
    return reply->property(kOversize).toBool();
}

QString tooLarge(const QString &what)
{
    return QStringLiteral("%1: the answer is larger than %2 MiB; refusing to read it")
        .arg(what)
        .arg(kMaxBodyBytes >> 20);
}

// Docker Hub's registry and its token service live on different hosts;
// every other registry's realm must be on its own host or be named.
bool isKnownRealmPair(const QString &registryHost, const QString &realmHost)
{
    return registryHost == QLatin1String("registry-1.docker.io") &&
        realmHost == QLatin1String("auth.docker.io");
}
} // namespace

Expected<ImageReference> ImageReference::parse(const QString &repository)
{
    static const QRegularExpression re(
        QStringLiteral("^(?:([a-zA-Z0-9.-]+(?::[0-9]+)?)/)?([a-z0-9]+(?:[._-][a-z0-9]+)*(?:/"
                       "[a-z0-9]+(?:[._-][a-z0-9]+)*)*)$"));
    const auto m = re.match(repository);
    if (!m.hasMatch())
        return Error { QStringLiteral("\"%1\" is not an image repository (like ghcr.io/org/name)")
                           .arg(repository) };
    ImageReference r;
    QString host = m.captured(1);
    QString name = m.captured(2);
    // A first part without a dot or port (and not localhost) is a Docker Hub namespace.
    if (!host.isEmpty() && !host.contains(QLatin1Char('.')) && !host.contains(QLatin1Char(':')) &&
        host != QLatin1String("localhost")) {
        name = host + QLatin1Char('/') + name;
        host.clear();
    }
    if (host.isEmpty()) {
        host = QStringLiteral("registry-1.docker.io");
        if (!name.contains(QLatin1Char('/')))
            name.prepend(QStringLiteral("library/"));
    }
    r.registry = host;
    r.name = name;
    return r;
}

static bool isLoopbackHost(const QString &host)
{
    QString h = host;
    if (h.startsWith(QLatin1Char('[')) && h.endsWith(QLatin1Char(']')))
        h = h.mid(1, h.size() - 2);
    return h == QLatin1String("localhost") || QHostAddress(h).isLoopback();
}

bool ImageReference::isLoopback() const
{
    return isLoopbackHost(QUrl(QStringLiteral("http://") + registry).host());
}

QUrl ImageReference::baseUrl() const
{
    return QUrl(
        QStringLiteral("%1://%2/v2/")
            .arg(isLoopback() ? QStringLiteral("http") : QStringLiteral("https"), registry));
}

RegistryClient::RegistryClient(ImageReference image, QObject *parent)
    : QObject(parent)
    , m_image(std::move(image))
{
    // No redirects: Authorization headers would follow them to another host.
    m_network.setRedirectPolicy(QNetworkRequest::ManualRedirectPolicy);
}

QStringList RegistryClient::deployableTags(const QStringList &tags)
{
    QStringList out;
    for (const QString &t : tags) {
        // cosign and attestation artefacts: sha256-<hex>[.sig|.att|.sbom]
        if (t.startsWith(QLatin1String("sha256-")))
            continue;
        out << t;
    }
    return out;
}

void RegistryClient::setCredentials(const QString &user, const QString &secret)
{
    m_user = user;
    m_secret = secret;
    m_token.clear();
}

QNetworkReply *RegistryClient::send(const QUrl &url, const QByteArray &verb,
                                    const QByteArray &accept)
{
    QNetworkRequest request(url);
    request.setTransferTimeout(m_timeoutMs);
    request.setRawHeader("Accept", accept);
    request.setRawHeader("User-Agent", "pilothouse");
    if (!m_token.isEmpty())
        request.setRawHeader("Authorization", "Bearer " + m_token.toLatin1());
    // HEAD through head(): as a custom verb QNAM would wait for a body.
    if (verb == "HEAD")
        return m_network.head(request);
    QNetworkReply *reply = m_network.get(request);
    capBody(reply);
    return reply;
}

QString RegistryClient::explain(QNetworkReply *reply, const QByteArray &body,
                                const QString &what) const
{
    const int http = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
    const QString where = m_image.registry + QLatin1Char('/') + m_image.name;
    if (bodyTooLarge(reply))
        return tooLarge(what);
    if (http == 0) {
        switch (reply->error()) {
        case QNetworkReply::ConnectionRefusedError:
            return QStringLiteral("%1: the registry %2 refused the connection (is it running?)")
                .arg(what, m_image.registry);
        case QNetworkReply::HostNotFoundError:
            return QStringLiteral("%1: registry host %2 not found").arg(what, m_image.registry);
        case QNetworkReply::OperationCanceledError:
        case QNetworkReply::TimeoutError:
            return QStringLiteral("%1: the registry %2 did not answer within %3 s")
                .arg(what, m_image.registry)
                .arg(m_timeoutMs / 1000.0);
        case QNetworkReply::SslHandshakeFailedError:
            return QStringLiteral("%1: TLS with %2 failed: %3 (certificates are always verified)")
                .arg(what, m_image.registry, reply->errorString());
        default:
            return QStringLiteral("%1: %2").arg(what, reply->errorString());
        }
    }
    // The distribution spec's error body: {"errors":[{"code":..., "message":...}]}
    QString code;
    QString message;
    const QJsonArray errors =
        QJsonDocument::fromJson(body).object().value(QStringLiteral("errors")).toArray();
    if (!errors.isEmpty()) {
        code = errors.first().toObject().value(QStringLiteral("code")).toString();
        message = errors.first().toObject().value(QStringLiteral("message")).toString();
    }
    if (code == QLatin1String("NAME_UNKNOWN") ||
        (code.isEmpty() && http == 404 && what.contains(QLatin1String("tags"))))
        return QStringLiteral("%1: the registry has no repository %2 (check image.repository)")
            .arg(what, where);
    if (code == QLatin1String("MANIFEST_UNKNOWN") || (http == 404))
        return QStringLiteral("%1: %2 has no such tag").arg(what, where);
    if (code == QLatin1String("UNAUTHORIZED") || http == 401)
        return QStringLiteral("%1: the registry wants credentials for %2%3")
            .arg(what, where,
                 m_lastTokenError.isEmpty() ? QString()
                                            : QStringLiteral(" (%1)").arg(m_lastTokenError));
    if (code == QLatin1String("DENIED") || http == 403)
        return QStringLiteral("%1: access to %2 denied for these credentials").arg(what, where);
    if (code == QLatin1String("TOOMANYREQUESTS") || http == 429)
        return QStringLiteral("%1: the registry is rate-limiting us; try again in a minute")
            .arg(what);
    return QStringLiteral("%1: HTTP %2%3")
        .arg(what)
        .arg(http)
        .arg(message.isEmpty() ? QString() : QStringLiteral(": ") + message);
}

void RegistryClient::request(const QUrl &url, const QByteArray &verb, const QByteArray &accept,
                             std::function<void(QNetworkReply *)> done, bool retried)
{
    QNetworkReply *reply = send(url, verb, accept);
    connect(reply, &QNetworkReply::finished, this, [this, reply, url, verb, accept, done, retried] {
        const int http = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        const QByteArray challenge = reply->rawHeader("WWW-Authenticate");
        if (http != 401 || retried || !challenge.startsWith("Bearer ")) {
            reply->deleteLater(); // before done(): it may delete this client
            done(reply);
            return;
        }
        // No token yet, or it expired: fetch one for this challenge, then once more.
        // The 401 stays alive until then: it is the answer if no token comes.
        fetchToken(challenge, [this, reply, url, verb, accept, done](Expected<QString> token) {
            if (!token) {
                m_lastTokenError = token.error();
                reply->deleteLater();
                done(reply);
                return;
            }
            reply->deleteLater();
            m_lastTokenError.clear();
            m_token = *token;
            request(url, verb, accept, done, true);
        });
    });
}

QString RegistryClient::checkRealm(const QUrl &realm) const
{
    const QString shown = realm.toString(QUrl::RemoveUserInfo | QUrl::RemoveQuery);
    if (!realm.isValid() || realm.host().isEmpty())
        return QStringLiteral("the registry %1 named no usable token service (\"%2\")")
            .arg(m_image.registry, shown);
    const QString registryHost = QUrl(QStringLiteral("http://") + m_image.registry).host();
    // Plain http only where the registry itself is on loopback (a local test
    // registry), and then only to loopback.
    const bool plainOk = m_image.isLoopback() && isLoopbackHost(realm.host());
    if (realm.scheme() != QLatin1String("https") &&
        !(realm.scheme() == QLatin1String("http") && plainOk))
        return QStringLiteral("the registry's token service %1 is not https; refusing to use it")
            .arg(shown);
    if (m_user.isEmpty() && m_secret.isEmpty())
        return {}; // anonymous: nothing of ours goes there
    const QString host = realm.host().toLower();
    if (host == registryHost.toLower() || isKnownRealmPair(registryHost.toLower(), host) ||
        (!m_trustedRealmHost.isEmpty() && host == m_trustedRealmHost.toLower()))
        return {};
    return QStringLiteral("the registry %1 asked for credentials to be sent to %2, another host; "
                          "nothing was sent. If %2 is that registry's own token service, name it "
                          "in the environment (image.tokenRealm: \"%2\")")
        .arg(m_image.registry, realm.host());
}

void RegistryClient::fetchToken(const QByteArray &challenge,
                                std::function<void(Expected<QString>)> done)
{
    // Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"
    QMap<QString, QString> params;
    static const QRegularExpression pair(QStringLiteral("(\\w+)=\"([^\"]*)\""));
    auto it = pair.globalMatch(QString::fromLatin1(challenge.mid(7)));
    while (it.hasNext()) {
        const auto m = it.next();
        params.insert(m.captured(1), m.captured(2));
    }
    QUrl realm(params.value(QStringLiteral("realm")), QUrl::StrictMode);
    if (const QString refusal = checkRealm(realm); !refusal.isEmpty()) {
        QMetaObject::invokeMethod(
            this, [done, refusal] { done(Error { refusal }); }, Qt::QueuedConnection);
        return;
    }
    QUrlQuery q;
    if (params.contains(QStringLiteral("service")))
        q.addQueryItem(QStringLiteral("service"), params.value(QStringLiteral("service")));
    q.addQueryItem(QStringLiteral("scope"),
                   params.value(QStringLiteral("scope"),
                                QStringLiteral("repository:%1:pull").arg(m_image.name)));
    realm.setQuery(q);
    QNetworkRequest request(realm);
    request.setTransferTimeout(m_timeoutMs);
    if (!m_user.isEmpty())
        request.setRawHeader("Authorization",
                             "Basic " + (m_user + QLatin1Char(':') + m_secret).toUtf8().toBase64());
    ++m_tokenFetches;
    QNetworkReply *reply = m_network.get(request);
    capBody(reply);
    connect(reply, &QNetworkReply::finished, this, [reply, done] {
        reply->deleteLater();
        if (bodyTooLarge(reply)) {
            done(Error { tooLarge(QStringLiteral("the token service")) });
            return;
        }
        const int http = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        const QJsonObject o = QJsonDocument::fromJson(reply->readAll()).object();
        const QString token = o.value(QStringLiteral("token"))
                                  .toString(o.value(QStringLiteral("access_token")).toString());
        if (http != 200 || token.isEmpty()) {
            done(Error {
                http == 401 || http == 403
                    ? QStringLiteral("the token service refused these credentials (HTTP %1)")
                          .arg(http)
                    : QStringLiteral("the token service answered HTTP %1 without a token")
                          .arg(http) });
            return;
        }
        done(token);
    });
}

void RegistryClient::listTags(std::function<void(Expected<QStringList>)> done)
{
    QUrl url = m_image.baseUrl().resolved(QUrl(m_image.name + QStringLiteral("/tags/list")));
    QUrlQuery q;
    q.addQueryItem(QStringLiteral("n"), QString::number(m_pageSize));
    url.setQuery(q);
    fetchPage(url, {}, std::move(done));
}

void RegistryClient::fetchPage(QUrl url, QStringList sofar,
                               std::function<void(Expected<QStringList>)> done)
{
    request(url, "GET", "application/json", [this, url, sofar, done](QNetworkReply *reply) mutable {
        const QByteArray body = reply->readAll();
        const int http = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        if (http != 200 || bodyTooLarge(reply)) {
            done(Error { explain(reply, body, QStringLiteral("listing tags")) });
            return;
        }
        for (const QJsonValue &t :
             QJsonDocument::fromJson(body).object().value(QStringLiteral("tags")).toArray())
            sofar << t.toString();
        // Link: </v2/name/tags/list?last=x&n=100>; rel="next"
        static const QRegularExpression next(QStringLiteral("<([^>]+)>\\s*;\\s*rel=\"?next\"?"));
        const auto m = next.match(QString::fromLatin1(reply->rawHeader("Link")));
        if (!m.hasMatch()) {
            done(sofar);
            return;
        }
        const QUrl nextUrl = url.resolved(QUrl(m.captured(1)));
        // The next page must be on the same origin: it carries our token.
        if (nextUrl.scheme() != url.scheme() || nextUrl.host() != url.host() ||
            nextUrl.port() != url.port() || sofar.size() > 100000) {
            done(Error {
                QStringLiteral("listing tags: the registry's pagination points elsewhere") });
            return;
        }
        fetchPage(nextUrl, sofar, done);
    });
}

void RegistryClient::resolveDigest(const QString &tag, std::function<void(Expected<QString>)> done)
{
    static const QRegularExpression valid(QStringLiteral("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"));
    if (!valid.match(tag).hasMatch()) {
        QMetaObject::invokeMethod(
            this,
            [done, tag] { done(Error { QStringLiteral("\"%1\" is not a valid tag").arg(tag) }); },
            Qt::QueuedConnection);
        return;
    }
    const QUrl url =
        m_image.baseUrl().resolved(QUrl(m_image.name + QStringLiteral("/manifests/") + tag));
    request(url, "HEAD", kManifestTypes, [this, tag, done](QNetworkReply *reply) {
        const int http = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
        const QString digest = QString::fromLatin1(reply->rawHeader("Docker-Content-Digest"));
        if (http != 200) {
            done(Error { explain(reply, {}, QStringLiteral("resolving tag %1").arg(tag)) });
            return;
        }
        if (!digest.startsWith(QLatin1String("sha256:"))) {
            done(Error {
                QStringLiteral("resolving tag %1: the registry sent no Docker-Content-Digest")
                    .arg(tag) });
            return;
        }
        done(digest);
    });
}

void makeRegistryClient(const Environment &env, QObject *context,
                        std::function<void(Expected<std::shared_ptr<RegistryClient>>)> done)
{
    using Answer = Expected<std::shared_ptr<RegistryClient>>;
    const auto later = [context, done](Answer a) {
        QMetaObject::invokeMethod(
            context, [done, a] { done(a); }, Qt::QueuedConnection);
    };
    if (env.imageRepository.isEmpty()) {
        later(Error { QStringLiteral("environment \"%1\" has no image repository: add \"image\": "
                                     "{\"repository\": ..., \"service\": ...}")
                          .arg(env.name) });
        return;
    }
    const auto ref = ImageReference::parse(env.imageRepository);
    if (!ref) {
        later(Error { ref.error() });
        return;
    }
    auto client = std::make_shared<RegistryClient>(*ref);
    client->setTrustedRealmHost(env.registryTokenRealm);
    applyRegistryCredentials(env, client, context, [client, done](Outcome applied) {
        if (!applied)
            done(Error { applied.error() });
        else
            done(client);
    });
}

void applyRegistryCredentials(const Environment &env, std::shared_ptr<RegistryClient> client,
                              QObject *context, std::function<void(Outcome)> done)
{
    const auto later = [context, done](Outcome o) {
        QMetaObject::invokeMethod(
            context, [done, o] { done(o); }, Qt::QueuedConnection);
    };
    if (!env.registryTokenEnv.isEmpty()) {
        const QString token = qEnvironmentVariable(qPrintable(env.registryTokenEnv));
        if (token.isEmpty()) {
            later(
                Error { QStringLiteral("the registry token variable %1 (image.tokenEnv of \"%2\") "
                                       "is not set; export it, then try again")
                            .arg(env.registryTokenEnv, env.name) });
            return;
        }
        client->setCredentials(env.registryUser, token);
        later(success());
        return;
    }
    if (!env.registryKeychainKey.isEmpty()) {
        readSecret(env.registryKeychainKey, context,
                   [client, user = env.registryUser, key = env.registryKeychainKey,
                    done](Expected<QString> secret) {
                       if (!secret) {
                           done(Error { QStringLiteral("the registry token (keychain key %1): %2")
                                            .arg(key, secret.error()) });
                           return;
                       }
                       client->setCredentials(user, *secret);
                       done(success());
                   });
        return;
    }
    client->setCredentials({}, {}); // anonymous (public images)
    later(success());
}

} // namespace pilothouse
