// The registry client against Debian's docker-registry (distribution v2) on
// loopback, filled through the same HTTP API a `docker push` uses.
#include "env/environment.h"
#include "registry/registryclient.h"
#include "servers.h"

#include <QCryptographicHash>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkReply>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTcpServer>
#include <QTcpSocket>
#include <QtTest>
#include <optional>

using namespace pilothouse;
using namespace pilothouse::fixtures;

class TestRegistry final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QProcess m_registry;
    QProcess m_authRegistry;
    QProcess m_tokens;
    quint16 m_port = 0;
    QNetworkAccessManager m_net;
    QMap<QString, QString> m_digests; // tag -> digest the registry reported on push

    QString repo() const { return QStringLiteral("127.0.0.1:%1/team/deckhand").arg(m_port); }

    QNetworkReply *call(const QByteArray &verb, const QUrl &url, const QByteArray &body = {},
                        const QByteArray &type = "application/octet-stream")
    {
        QNetworkRequest r(url);
        r.setHeader(QNetworkRequest::ContentTypeHeader, type);
        QNetworkReply *reply = verb == "POST" ? m_net.post(r, body)
            : verb == "PUT"                   ? m_net.put(r, body)
                                              : m_net.sendCustomRequest(r, verb, body);
        QSignalSpy done(reply, &QNetworkReply::finished);
        if (!reply->isFinished())
            done.wait(10000);
        return reply;
    }

    static QString sha256(const QByteArray &data)
    {
        return QStringLiteral("sha256:") +
            QString::fromLatin1(QCryptographicHash::hash(data, QCryptographicHash::Sha256).toHex());
    }

    bool pushBlob(const QString &name, const QByteArray &data)
    {
        const QUrl base(
            QStringLiteral("http://127.0.0.1:%1/v2/%2/blobs/uploads/").arg(m_port).arg(name));
        std::unique_ptr<QNetworkReply> start(call("POST", base));
        if (start->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt() != 202)
            return false;
        QUrl location = base.resolved(QUrl(QString::fromLatin1(start->rawHeader("Location"))));
        QUrlQuery q(location);
        q.addQueryItem(QStringLiteral("digest"), sha256(data));
        location.setQuery(q);
        std::unique_ptr<QNetworkReply> put(call("PUT", location, data));
        return put->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt() == 201;
    }

    // A minimal image: one config blob, one layer, a schema 2 manifest under `tag`.
    QString pushImage(const QString &name, const QString &tag)
    {
        const QByteArray config =
            QJsonDocument(QJsonObject { { QStringLiteral("architecture"), QStringLiteral("amd64") },
                                        { QStringLiteral("os"), QStringLiteral("linux") },
                                        { QStringLiteral("tag"), tag } })
                .toJson(QJsonDocument::Compact);
        const QByteArray layer = "layer of " + tag.toUtf8();
        if (!pushBlob(name, config) || !pushBlob(name, layer))
            return {};
        const QJsonObject manifest {
            { QStringLiteral("schemaVersion"), 2 },
            { QStringLiteral("mediaType"),
              QStringLiteral("application/vnd.docker.distribution.manifest.v2+json") },
            { QStringLiteral("config"),
              QJsonObject { { QStringLiteral("mediaType"),
                              QStringLiteral("application/vnd.docker.container.image.v1+json") },
                            { QStringLiteral("size"), config.size() },
                            { QStringLiteral("digest"), sha256(config) } } },
            { QStringLiteral("layers"),
              QJsonArray { QJsonObject {
                  { QStringLiteral("mediaType"),
                    QStringLiteral("application/vnd.docker.image.rootfs.diff.tar.gzip") },
                  { QStringLiteral("size"), layer.size() },
                  { QStringLiteral("digest"), sha256(layer) } } } },
        };
        std::unique_ptr<QNetworkReply> put(
            call("PUT",
                 QUrl(QStringLiteral("http://127.0.0.1:%1/v2/%2/manifests/%3")
                          .arg(m_port)
                          .arg(name, tag)),
                 QJsonDocument(manifest).toJson(QJsonDocument::Compact),
                 "application/vnd.docker.distribution.manifest.v2+json"));
        return QString::fromLatin1(put->rawHeader("Docker-Content-Digest"));
    }

    template<typename T>
    Expected<T> await(const std::function<void(std::function<void(Expected<T>)>)> &start)
    {
        std::optional<Expected<T>> result;
        start([&result](Expected<T> r) { result = std::move(r); });
        if (!QTest::qWaitFor([&] { return result.has_value(); }, 20000))
            return Error { QStringLiteral("test: no answer") };
        return *result;
    }

    Expected<QStringList> tags(RegistryClient &c)
    {
        return await<QStringList>([&c](auto done) { c.listTags(done); });
    }
    Expected<QString> digest(RegistryClient &c, const QString &tag)
    {
        return await<QString>([&c, tag](auto done) { c.resolveDigest(tag, done); });
    }

private slots:
    void initTestCase()
    {
        const QString binary = QStandardPaths::findExecutable(QStringLiteral("docker-registry"));
        PILOTHOUSE_REQUIRE(binary.isEmpty() ? QStringLiteral("docker-registry is not installed "
                                                             "(scripts/setup.sh installs it)")
                                            : QString());
        QVERIFY(m_dir.isValid());
        m_port = freePort();
        QFile cfg(m_dir.filePath(QStringLiteral("config.yml")));
        QVERIFY(cfg.open(QIODevice::WriteOnly));
        cfg.write(QStringLiteral("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    "
                                 "rootdirectory: %1\n"
                                 "http:\n  addr: 127.0.0.1:%2\n")
                      .arg(m_dir.filePath(QStringLiteral("data")))
                      .arg(m_port)
                      .toUtf8());
        cfg.close();
        m_registry.setProcessChannelMode(QProcess::MergedChannels);
        m_registry.start(binary, { QStringLiteral("serve"), cfg.fileName() });
        QVERIFY(m_registry.waitForStarted());
        QTRY_VERIFY_WITH_TIMEOUT(httpRequest(m_port, "GET", "/v2/").status == 200, 15000);
        for (const char *tag : { "sha-1111111", "sha-2222222", "staging", "release-candidate" }) {
            const QString d = pushImage(QStringLiteral("team/deckhand"), QString::fromLatin1(tag));
            QVERIFY2(d.startsWith(QLatin1String("sha256:")), tag);
            m_digests.insert(QString::fromLatin1(tag), d);
        }
        // What cosign leaves next to a signed image.
        QVERIFY(!pushImage(QStringLiteral("team/deckhand"),
                           QStringLiteral("sha256-%1.sig").arg(QString(64, QLatin1Char('a'))))
                     .isEmpty());
    }

    void cleanupTestCase()
    {
        for (QProcess *p : { &m_registry, &m_authRegistry, &m_tokens }) {
            p->kill();
            p->waitForFinished(5000);
        }
    }

    // A second registry on the same storage, behind the bearer-token flow of a
    // real token service (tests/fixtures/token_server.py, RS256 JWTs).
    void bearerTokens()
    {
        const QString openssl = QStandardPaths::findExecutable(QStringLiteral("openssl"));
        QVERIFY2(!openssl.isEmpty(), "openssl is needed to make the token service's certificate");
        const quint16 tokenPort = freePort();
        const quint16 port = freePort();
        // Token service with a fresh key, and a registry that trusts only that key.
        const auto startAuth = [&](const QString &keyName,
                                   const QString &realmHost = QStringLiteral("127.0.0.1")) {
            for (QProcess *p : { &m_authRegistry, &m_tokens }) {
                p->kill();
                p->waitForFinished(5000);
            }
            const QString key = m_dir.filePath(keyName + QStringLiteral(".key"));
            const QString cert = m_dir.filePath(keyName + QStringLiteral(".pem"));
            QProcess mk;
            mk.start(openssl,
                     { QStringLiteral("req"), QStringLiteral("-x509"), QStringLiteral("-newkey"),
                       QStringLiteral("rsa:2048"), QStringLiteral("-nodes"),
                       QStringLiteral("-keyout"), key, QStringLiteral("-out"), cert,
                       QStringLiteral("-days"), QStringLiteral("1"), QStringLiteral("-subj"),
                       QStringLiteral("/CN=pilothouse-test-token") });
            if (!mk.waitForFinished(30000) || mk.exitCode() != 0)
                return false;
            m_tokens.start(QStringLiteral("/usr/bin/python3"),
                           { QStringLiteral(FIXTURES_DIR "/token_server.py"),
                             QStringLiteral("--port"), QString::number(tokenPort),
                             QStringLiteral("--key"), key, QStringLiteral("--cert"), cert,
                             QStringLiteral("--issuer"), QStringLiteral("pilothouse-test"),
                             QStringLiteral("--service"), QStringLiteral("registry-test"),
                             QStringLiteral("--user"), QStringLiteral("deploy"),
                             QStringLiteral("--password"), QStringLiteral("s3cret") });
            if (!m_tokens.waitForReadyRead(15000) || !m_tokens.readLine().startsWith("ready"))
                return false;
            QFile cfg(m_dir.filePath(QStringLiteral("auth.yml")));
            if (!cfg.open(QIODevice::WriteOnly))
                return false;
            cfg.write(QStringLiteral("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n "
                                     "   rootdirectory: %1\n"
                                     "http:\n  addr: 127.0.0.1:%2\nauth:\n  token:\n    realm: "
                                     "http://%5:%3/token\n"
                                     "    service: registry-test\n    issuer: pilothouse-test\n    "
                                     "rootcertbundle: %4\n")
                          .arg(m_dir.filePath(QStringLiteral("data")))
                          .arg(port)
                          .arg(tokenPort)
                          .arg(cert, realmHost)
                          .toUtf8());
            cfg.close();
            m_authRegistry.setProcessChannelMode(QProcess::MergedChannels);
            m_authRegistry.start(QStandardPaths::findExecutable(QStringLiteral("docker-registry")),
                                 { QStringLiteral("serve"), cfg.fileName() });
            return QTest::qWaitFor(
                [port] { return httpRequest(port, "GET", "/v2/").status == 401; }, 15000);
        };
        QVERIFY(startAuth(QStringLiteral("first")));

        const auto image =
            *ImageReference::parse(QStringLiteral("127.0.0.1:%1/team/deckhand").arg(port));
        RegistryClient anonymous(image);
        auto t = tags(anonymous);
        QVERIFY(!t.ok());
        QVERIFY2(t.error().contains(QLatin1String("wants credentials")) &&
                     t.error().contains(QLatin1String("refused these credentials")),
                 qPrintable(t.error()));

        RegistryClient client(image);
        client.setCredentials(QStringLiteral("deploy"), QStringLiteral("s3cret"));
        t = tags(client);
        QVERIFY2(t.ok(), qPrintable(t ? QString() : t.error()));
        QCOMPARE(RegistryClient::deployableTags(*t).size(), 4);
        const auto d = digest(client, QStringLiteral("staging"));
        QVERIFY2(d.ok(), qPrintable(d ? QString() : d.error()));
        QCOMPARE(*d, m_digests.value(QStringLiteral("staging")));
        QCOMPARE(client.tokenFetches(), 1); // one token serves both calls

        // The registry stops accepting that token (as when it expires; here the
        // signing key is rotated): the next call gets a 401, fetches a new token
        // and succeeds, without the caller noticing.
        QVERIFY(startAuth(QStringLiteral("second")));
        t = tags(client);
        QVERIFY2(t.ok(), qPrintable(t ? QString() : t.error()));
        QCOMPARE(client.tokenFetches(), 2);

        // A client made for an environment whose token variable holds a wrong
        // token is refused; once the right one is set, reading the credentials
        // again fixes the same client (as after saving a token in Settings).
        Environment env;
        env.name = QStringLiteral("staging");
        env.imageRepository = QStringLiteral("127.0.0.1:%1/team/deckhand").arg(port);
        env.registryUser = QStringLiteral("deploy");
        env.registryTokenEnv = QStringLiteral("PILOTHOUSE_TEST_REGISTRY_TOKEN");
        qputenv("PILOTHOUSE_TEST_REGISTRY_TOKEN", "wrong");
        std::shared_ptr<RegistryClient> made;
        makeRegistryClient(env, this, [&](Expected<std::shared_ptr<RegistryClient>> c) {
            QVERIFY2(c.ok(), qPrintable(c ? QString() : c.error()));
            made = *c;
        });
        QTRY_VERIFY(made);
        t = tags(*made);
        QVERIFY(!t.ok());
        QVERIFY2(t.error().contains(QLatin1String("refused these credentials")),
                 qPrintable(t.error()));
        qputenv("PILOTHOUSE_TEST_REGISTRY_TOKEN", "s3cret");
        std::optional<Outcome> applied;
        applyRegistryCredentials(env, made, this, [&](Outcome o) { applied = o; });
        QTRY_VERIFY(applied.has_value());
        QVERIFY(applied->ok());
        t = tags(*made);
        QVERIFY2(t.ok(), qPrintable(t ? QString() : t.error()));
        qunsetenv("PILOTHOUSE_TEST_REGISTRY_TOKEN");
        applied.reset();
        applyRegistryCredentials(env, made, this, [&](Outcome o) { applied = o; });
        QTRY_VERIFY(applied.has_value());
        QVERIFY(!applied->ok());
        QVERIFY2(applied->error().contains(QLatin1String("PILOTHOUSE_TEST_REGISTRY_TOKEN")),
                 qPrintable(applied->error()));
        QVERIFY(!QString::fromUtf8(m_tokens.readAll()).contains(QLatin1String("s3cret")));

        // The registry names a token service on another host ("localhost" is
        // not "127.0.0.1"): credentials go nowhere, and the message says who asked.
        QVERIFY(startAuth(QStringLiteral("third"), QStringLiteral("localhost")));
        RegistryClient elsewhere(image);
        elsewhere.setCredentials(QStringLiteral("deploy"), QStringLiteral("s3cret"));
        t = tags(elsewhere);
        QVERIFY(!t.ok());
        QVERIFY2(
            t.error().contains(QLatin1String("to localhost, another host; nothing was sent")) &&
                t.error().contains(QLatin1String("image.tokenRealm")),
            qPrintable(t.error()));
        QCOMPARE(elsewhere.tokenFetches(), 0);
        QVERIFY(!m_tokens.waitForReadyRead(300)); // the token service heard nothing
        // Named by the environment, the same realm is trusted.
        elsewhere.setTrustedRealmHost(QStringLiteral("localhost"));
        t = tags(elsewhere);
        QVERIFY2(t.ok(), qPrintable(t ? QString() : t.error()));
        QCOMPARE(elsewhere.tokenFetches(), 1);
    }

    // An answer past the size cap is dropped, not read into memory whole.
    void oversizedAnswersAreRefused()
    {
        QTcpServer server;
        QVERIFY(server.listen(QHostAddress::LocalHost));
        qint64 sent = 0;
        connect(&server, &QTcpServer::newConnection, this, [&] {
            QTcpSocket *c = server.nextPendingConnection();
            connect(c, &QTcpSocket::readyRead, c, [c, &sent] {
                c->readAll();
                c->write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         "Content-Length: 67108864\r\n\r\n{\"tags\":[\"");
                const QByteArray chunk(1 << 20, 'a');
                for (int i = 0; i < 8; ++i) // 8 MiB, past the 4 MiB cap
                    sent += c->write(chunk);
            });
        });
        RegistryClient client(*ImageReference::parse(
            QStringLiteral("127.0.0.1:%1/team/big").arg(server.serverPort())));
        const auto t = tags(client);
        QVERIFY(!t.ok());
        QVERIFY2(t.error().contains(QLatin1String("larger than 4 MiB")), qPrintable(t.error()));
        QVERIFY(sent > 0);
    }

    void references_data()
    {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QString>("registry");
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("base");
        QTest::newRow("ghcr") << "ghcr.io/pilothouse/deckhand"
                              << "ghcr.io"
                              << "pilothouse/deckhand"
                              << "https://ghcr.io/v2/";
        QTest::newRow("hub user") << "someone/app"
                                  << "registry-1.docker.io"
                                  << "someone/app"
                                  << "https://registry-1.docker.io/v2/";
        QTest::newRow("hub official") << "nginx"
                                      << "registry-1.docker.io"
                                      << "library/nginx"
                                      << "https://registry-1.docker.io/v2/";
        QTest::newRow("loopback") << "127.0.0.1:5000/a/b"
                                  << "127.0.0.1:5000"
                                  << "a/b"
                                  << "http://127.0.0.1:5000/v2/";
        QTest::newRow("localhost") << "localhost:5000/b"
                                   << "localhost:5000"
                                   << "b"
                                   << "http://localhost:5000/v2/";
        QTest::newRow("private over tls") << "registry.example.com:5000/b"
                                          << "registry.example.com:5000"
                                          << "b"
                                          << "https://registry.example.com:5000/v2/";
    }

    void references()
    {
        QFETCH(QString, text);
        QFETCH(QString, registry);
        QFETCH(QString, name);
        QFETCH(QString, base);
        const auto r = ImageReference::parse(text);
        QVERIFY(r.ok());
        QCOMPARE(r->registry, registry);
        QCOMPARE(r->name, name);
        QCOMPARE(r->baseUrl().toString(), base);
        QVERIFY(!ImageReference::parse(QStringLiteral("Bad/Name:tag")).ok());
    }

    void listsEveryTagAcrossPages()
    {
        RegistryClient client(*ImageReference::parse(repo()));
        client.setPageSize(2); // five tags: three pages, followed through Link
        const auto all = tags(client);
        QVERIFY2(all.ok(), qPrintable(all ? QString() : all.error()));
        QCOMPARE(all->size(), 5);
        for (const QString &t : m_digests.keys())
            QVERIFY(all->contains(t));
        const QStringList shown = RegistryClient::deployableTags(*all);
        QCOMPARE(shown.size(), 4);
        for (const QString &t : shown)
            QVERIFY(!t.startsWith(QLatin1String("sha256-")));
    }

    void resolvesDigests()
    {
        RegistryClient client(*ImageReference::parse(repo()));
        for (auto it = m_digests.cbegin(); it != m_digests.cend(); ++it) {
            const auto d = digest(client, it.key());
            QVERIFY2(d.ok(), qPrintable(d ? QString() : d.error()));
            QCOMPARE(*d, it.value());
        }
        QVERIFY(m_digests.value(QStringLiteral("sha-1111111")) !=
                m_digests.value(QStringLiteral("sha-2222222")));
    }

    void pilothousectlTags()
    {
        QTemporaryFile cfg;
        QVERIFY(cfg.open());
        cfg.write(
            QStringLiteral("{\"version\":1,\"environments\":[{\"name\":\"r\",\"kind\":\"native\","
                           "\"processes\":[{\"name\":\"p\",\"program\":\"/bin/true\"}],"
                           "\"image\":{\"repository\":\"%1\",\"service\":\"p\"}}]}")
                .arg(repo())
                .toUtf8());
        cfg.close();
        QProcess ctl;
        ctl.start(QStringLiteral(PILOTHOUSECTL),
                  { QStringLiteral("tags"), QStringLiteral("--config"), cfg.fileName(),
                    QStringLiteral("--env"), QStringLiteral("r") });
        QVERIFY(ctl.waitForFinished(30000));
        QCOMPARE(ctl.exitCode(), 0);
        const QStringList shown =
            QString::fromUtf8(ctl.readAllStandardOutput()).split(u'\n', Qt::SkipEmptyParts);
        QCOMPARE(shown.size(), 4);
        QVERIFY(shown.contains(QStringLiteral("staging")));
        ctl.start(QStringLiteral(PILOTHOUSECTL),
                  { QStringLiteral("tags"), QStringLiteral("--all"), QStringLiteral("--json"),
                    QStringLiteral("--config"), cfg.fileName(), QStringLiteral("--env"),
                    QStringLiteral("r") });
        QVERIFY(ctl.waitForFinished(30000));
        QCOMPARE(ctl.exitCode(), 0);
        QCOMPARE(QJsonDocument::fromJson(ctl.readAllStandardOutput())
                     .object()
                     .value(QStringLiteral("tags"))
                     .toArray()
                     .size(),
                 5);
    }

    void clearErrors()
    {
        RegistryClient client(*ImageReference::parse(repo()));
        auto d = digest(client, QStringLiteral("sha-0000000"));
        QVERIFY(!d.ok());
        QVERIFY2(d.error().contains(QLatin1String("has no such tag")), qPrintable(d.error()));
        d = digest(client, QStringLiteral("-bad"));
        QVERIFY(!d.ok());
        QVERIFY(d.error().contains(QLatin1String("not a valid tag")));

        RegistryClient unknown(
            *ImageReference::parse(QStringLiteral("127.0.0.1:%1/team/nothing").arg(m_port)));
        const auto t = tags(unknown);
        QVERIFY(!t.ok());
        QVERIFY2(t.error().contains(QLatin1String("has no repository 127.0.0.1")),
                 qPrintable(t.error()));

        RegistryClient stopped(
            *ImageReference::parse(QStringLiteral("127.0.0.1:%1/team/deckhand").arg(freePort())));
        const auto s = tags(stopped);
        QVERIFY(!s.ok());
        QVERIFY2(s.error().contains(QLatin1String("refused the connection")),
                 qPrintable(s.error()));
    }
};

QTEST_GUILESS_MAIN(TestRegistry)
#include "tst_registry.moc"
