#pragma once

#include "core/result.h"

#include <QNetworkAccessManager>
#include <QObject>
#include <QStringList>
#include <QUrl>
#include <functional>
#include <memory>

class QNetworkReply;

// The OCI distribution API for one image repository: its tags (following
// Link pagination) and the digest a tag points at. HTTPS with verified TLS;
// plain HTTP only for a registry on loopback. Errors come back in words a
// person can act on.
namespace pilothouse {

struct ImageReference
{
    QString registry; // host[:port], e.g. ghcr.io or 127.0.0.1:5000
    QString name; // path in the registry, e.g. pilothouse/deckhand

    // "ghcr.io/org/app" -> {ghcr.io, org/app}; "org/app" -> Docker Hub.
    static Expected<ImageReference> parse(const QString &repository);
    bool isLoopback() const;
    QUrl baseUrl() const; // https://host/v2/ (http:// for loopback)
};

class RegistryClient final : public QObject
{
    Q_OBJECT
public:
    explicit RegistryClient(ImageReference image, QObject *parent = nullptr);

    void setTimeoutMs(int ms) { m_timeoutMs = ms; }
    // For private repositories: sent (Basic) to the registry's token service
    // only, never to the registry itself. The caller takes them from the
    // keychain or a named environment variable.
    void setCredentials(const QString &user, const QString &secret);
    // Credentials go to a token service on the registry's own host (Docker
    // Hub's auth.docker.io for registry-1.docker.io), or on this host when
    // the environment names it (image.tokenRealm); any other is refused.
    void setTrustedRealmHost(const QString &host) { m_trustedRealmHost = host; }
    int tokenFetches() const { return m_tokenFetches; }
    void setPageSize(int n) { m_pageSize = n; }

    // Every tag, in the registry's order, all pages.
    void listTags(std::function<void(Expected<QStringList>)> done);
    // sha256:... of what the tag points at (an index for multi-arch images).
    void resolveDigest(const QString &tag, std::function<void(Expected<QString>)> done);

    // The tags a person deploys: signature/attestation tags (sha256-...) hidden.
    static QStringList deployableTags(const QStringList &tags);

private:
    void fetchPage(QUrl url, QStringList sofar, std::function<void(Expected<QStringList>)> done);
    // Sends, and on a Bearer challenge (401) gets a token and sends once more.
    // `done` gets the final reply, which is deleted after it returns.
    void request(const QUrl &url, const QByteArray &verb, const QByteArray &accept,
                 std::function<void(QNetworkReply *)> done, bool retried = false);
    QNetworkReply *send(const QUrl &url, const QByteArray &verb, const QByteArray &accept);
    void fetchToken(const QByteArray &challenge, std::function<void(Expected<QString>)> done);
    // Empty when credentials may go to this token service, else why not.
    QString checkRealm(const QUrl &realm) const;
    QString explain(QNetworkReply *reply, const QByteArray &body, const QString &what) const;

    ImageReference m_image;
    QNetworkAccessManager m_network;
    int m_timeoutMs = 15000;
    int m_pageSize = 100;
    QString m_user;
    QString m_secret;
    QString m_trustedRealmHost;
    QString m_token; // bearer token for this repository's pull scope
    int m_tokenFetches = 0;
    QString m_lastTokenError;
};

struct Environment;

// A client for an environment's image repository (image.repository), with
// its registry credentials applied: a token from the variable named by
// image.tokenEnv or from the keychain (image.keychain). Asynchronous, since
// the keychain is; the answer comes on the context's thread.
void makeRegistryClient(const Environment &env, QObject *context,
                        std::function<void(Expected<std::shared_ptr<RegistryClient>>)> done);
// Reads the environment's registry credentials again and gives them to an
// existing client (a token saved since takes effect; requests in flight keep
// going). The answer comes on the context's thread.
void applyRegistryCredentials(const Environment &env, std::shared_ptr<RegistryClient> client,
                              QObject *context, std::function<void(Outcome)> done);

} // namespace pilothouse
