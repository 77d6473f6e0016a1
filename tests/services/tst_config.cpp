#include "config.h"
#include "servers.h"

#include <QFile>
#include <QProcess>
#include <QTemporaryDir>
#include <QTest>
#include <sys/stat.h>

using namespace deckhand;

namespace {
QProcessEnvironment env(std::initializer_list<std::pair<const char *, const char *>> vars)
{
    QProcessEnvironment e;
    for (const auto &[k, v] : vars)
        e.insert(QLatin1String(k), QLatin1String(v));
    return e;
}
} // namespace

class TestConfig : public QObject
{
    Q_OBJECT
private Q_SLOTS:
    void defaults()
    {
        const auto parsed = Config::fromEnvironment(QProcessEnvironment());
        QVERIFY(std::holds_alternative<Config>(parsed));
        const Config &c = std::get<Config>(parsed);
        QCOMPARE(c.database.kind, DatabaseUrl::Kind::Sqlite);
        QCOMPARE(c.database.path, Config::defaultSqlitePath());
        QVERIFY(!c.redis.has_value());
        QCOMPARE(c.host, QStringLiteral("127.0.0.1"));
        QCOMPARE(c.port, quint16(8000));
        QCOMPARE(c.logFormat, LogFormat::Json);
        QCOMPARE(c.logLevel, LogLevel::Info);
        QCOMPARE(c.shutdownGraceMs, 10000);
        QCOMPARE(c.checkIntervalMs, 5000);
        QCOMPARE(c.checkTimeoutMs, 1000);
    }

    void everything()
    {
        const auto parsed = Config::fromEnvironment(env(
            { { "DATABASE_URL", "postgresql://app:s%40cret@db.internal:6543/deck?sslmode=require" },
              { "REDIS_URL", "redis://:pw@cache:6380/2" },
              { "HOST", "0.0.0.0" },
              { "PORT", "9000" },
              { "LOG_LEVEL", "WARNING" },
              { "LOG_FORMAT", "console" },
              { "SHUTDOWN_GRACE_SECONDS", "2.5" },
              { "CHECK_INTERVAL_SECONDS", "0.5" },
              { "CHECK_TIMEOUT_SECONDS", "0.25" } }));
        QVERIFY(std::holds_alternative<Config>(parsed));
        const Config &c = std::get<Config>(parsed);
        QCOMPARE(c.database.kind, DatabaseUrl::Kind::Postgres);
        QCOMPARE(c.database.host, QStringLiteral("db.internal"));
        QCOMPARE(c.database.port, 6543);
        QCOMPARE(c.database.user, QStringLiteral("app"));
        QCOMPARE(c.database.password, QStringLiteral("s@cret"));
        QCOMPARE(c.database.database, QStringLiteral("deck"));
        QCOMPARE(c.database.options, QStringLiteral("sslmode=require"));
        QVERIFY(!c.database.redacted().contains(QLatin1String("cret")));
        QVERIFY(c.redis.has_value());
        QCOMPARE(c.redis->host, QStringLiteral("cache"));
        QCOMPARE(c.redis->port, 6380);
        QCOMPARE(c.redis->password, QStringLiteral("pw"));
        QCOMPARE(c.redis->db, 2);
        QCOMPARE(c.port, quint16(9000));
        QCOMPARE(c.logLevel, LogLevel::Warning);
        QCOMPARE(c.logFormat, LogFormat::Console);
        QCOMPARE(c.shutdownGraceMs, 2500);
        QCOMPARE(c.checkIntervalMs, 500);
        QCOMPARE(c.checkTimeoutMs, 250);
    }

    void badValuesAreAllListed()
    {
        const auto parsed =
            Config::fromEnvironment(env({ { "DATABASE_URL", "mysql://root:hunter2@db/x" },
                                          { "REDIS_URL", "http://cache" },
                                          { "HOST", "not a host" },
                                          { "PORT", "70000" },
                                          { "LOG_LEVEL", "loud" },
                                          { "LOG_FORMAT", "xml" },
                                          { "SHUTDOWN_GRACE_SECONDS", "-1" },
                                          { "CHECK_INTERVAL_SECONDS", "soon" },
                                          { "CHECK_TIMEOUT_SECONDS", "nan" } }));
        QVERIFY(std::holds_alternative<QStringList>(parsed));
        const QStringList problems = std::get<QStringList>(parsed);
        const QString all = problems.join(QLatin1Char('\n'));
        for (const char *name :
             { "DATABASE_URL", "REDIS_URL", "HOST", "PORT", "LOG_LEVEL", "LOG_FORMAT",
               "SHUTDOWN_GRACE_SECONDS", "CHECK_INTERVAL_SECONDS", "CHECK_TIMEOUT_SECONDS" })
            QVERIFY2(all.contains(QLatin1String(name) + QLatin1Char('=')), name);
        QVERIFY2(!all.contains(QLatin1String("hunter2")), qPrintable(all));
        QVERIFY(all.contains(QLatin1String("expected")));
    }

    void databaseUrls_data()
    {
        QTest::addColumn<QString>("url");
        QTest::addColumn<bool>("valid");
        QTest::newRow("sqlite abs") << QStringLiteral("sqlite:///var/lib/deckhand/d.db") << true;
        QTest::newRow("sqlite memory") << QStringLiteral("sqlite:///:memory:") << false;
        QTest::newRow("sqlite relative") << QStringLiteral("sqlite://relative/d.db") << false;
        QTest::newRow("sqlite empty") << QStringLiteral("sqlite://") << false;
        QTest::newRow("pg") << QStringLiteral("postgresql://u@h:5432/db") << true;
        QTest::newRow("pg short scheme") << QStringLiteral("postgres://u@h/db") << true;
        QTest::newRow("pg no db") << QStringLiteral("postgresql://u@h:5432/") << false;
        QTest::newRow("pg no host") << QStringLiteral("postgresql:///db") << false;
        QTest::newRow("pg bad option") << QStringLiteral("postgresql://u@h/db?host=evil") << false;
        QTest::newRow("garbage") << QStringLiteral("just text") << false;
    }
    void databaseUrls()
    {
        QFETCH(QString, url);
        QFETCH(bool, valid);
        const auto parsed = DatabaseUrl::parse(url);
        QCOMPARE(parsed.ok(), valid);
        if (!valid)
            QVERIFY(!parsed.error().isEmpty());
    }

    void timeoutMayNotExceedInterval()
    {
        const auto parsed = Config::fromEnvironment(
            env({ { "CHECK_INTERVAL_SECONDS", "1" }, { "CHECK_TIMEOUT_SECONDS", "2" } }));
        QVERIFY(std::holds_alternative<QStringList>(parsed));
        QVERIFY(std::get<QStringList>(parsed).join(QString()).contains(
            QLatin1String("CHECK_TIMEOUT_SECONDS")));
    }

    // The binary itself: every bad variable listed, exit 78, no password printed.
    // Docker and Swarm secrets: <NAME>_FILE for every password-bearing
    // variable, read once at start; a file others can read is refused.
    void secretsFromFiles()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const auto write = [&dir](const char *name, const QByteArray &text,
                                  QFile::Permissions mode) {
            QFile f(dir.filePath(QLatin1String(name)));
            f.open(QIODevice::WriteOnly);
            f.write(text);
            f.close();
            f.setPermissions(mode);
            return f.fileName();
        };
        const auto owner = QFile::ReadOwner | QFile::WriteOwner;
        const QString db = write("db", "postgresql://app:FromFile1@db:5432/app\n", owner);
        const QString redis = write("redis", "redis://:FromFile2@cache:6379/0", owner);
        const QString token = write("token", "0123456789abcdef0123\n", owner);
        QProcessEnvironment e;
        e.insert(QStringLiteral("DATABASE_URL_FILE"), db);
        e.insert(QStringLiteral("REDIS_URL_FILE"), redis);
        e.insert(QStringLiteral("JOBS_API_TOKEN_FILE"), token);
        auto parsed = Config::fromEnvironment(e);
        QVERIFY(std::holds_alternative<Config>(parsed));
        QCOMPARE(std::get<Config>(parsed).database.password, QStringLiteral("FromFile1"));
        QCOMPARE(std::get<Config>(parsed).redis->password, QStringLiteral("FromFile2"));
        QCOMPARE(std::get<Config>(parsed).jobsToken, QByteArray("0123456789abcdef0123"));

        // Readable by others: refused, naming the file and the fix, never the value.
        const QString open = write("open", "postgresql://app:Leaky3@db:5432/app",
                                   owner | QFile::ReadGroup | QFile::ReadOther);
        e.insert(QStringLiteral("DATABASE_URL_FILE"), open);
        parsed = Config::fromEnvironment(e);
        QVERIFY(std::holds_alternative<QStringList>(parsed));
        const QString why = std::get<QStringList>(parsed).join(u'\n');
        QVERIFY2(why.contains(QLatin1String("DATABASE_URL_FILE=")) &&
                     why.contains(QLatin1String("other users can read it (mode 0644)")) &&
                     !why.contains(QLatin1String("Leaky3")),
                 qPrintable(why));
        // Both ways at once, a missing file, a symbolic link, an empty file.
        QProcessEnvironment both;
        both.insert(QStringLiteral("REDIS_URL"), QStringLiteral("redis://cache:6379"));
        both.insert(QStringLiteral("REDIS_URL_FILE"), redis);
        both.insert(QStringLiteral("DATABASE_URL_FILE"), dir.filePath(QStringLiteral("nope")));
        // A FIFO would block a plain open: refused at once, as not a regular file.
        QVERIFY(::mkfifo(QFile::encodeName(dir.filePath(QStringLiteral("fifo"))).constData(),
                         0600) == 0);
        both.insert(QStringLiteral("JOBS_API_TOKEN_FILE"), dir.filePath(QStringLiteral("fifo")));
        parsed = Config::fromEnvironment(both);
        QVERIFY(std::holds_alternative<QStringList>(parsed));
        const QStringList problems = std::get<QStringList>(parsed);
        QVERIFY2(problems.size() == 3, qPrintable(problems.join(u'\n')));
        QVERIFY(problems.join(u'\n').contains(QLatin1String("set REDIS_URL or REDIS_URL_FILE")));
        QVERIFY(problems.join(u'\n').contains(QLatin1String("not a regular file")));
        // A link (Kubernetes mounts secrets so) is followed to its private file.
        QVERIFY(QFile::link(db, dir.filePath(QStringLiteral("link"))));
        QProcessEnvironment linked;
        linked.insert(QStringLiteral("DATABASE_URL_FILE"), dir.filePath(QStringLiteral("link")));
        parsed = Config::fromEnvironment(linked);
        QVERIFY(std::holds_alternative<Config>(parsed));
        QCOMPARE(std::get<Config>(parsed).database.password, QStringLiteral("FromFile1"));
        // An empty variable next to its _FILE counts as unset: a Swarm stack
        // clears the image's default DATABASE_URL so.
        linked.insert(QStringLiteral("DATABASE_URL"), QString());
        parsed = Config::fromEnvironment(linked);
        QVERIFY(std::holds_alternative<Config>(parsed));
        QCOMPARE(std::get<Config>(parsed).database.password, QStringLiteral("FromFile1"));
        QProcessEnvironment empty;
        empty.insert(QStringLiteral("REDIS_URL_FILE"), write("empty", "\n", owner));
        parsed = Config::fromEnvironment(empty);
        QVERIFY(std::holds_alternative<QStringList>(parsed) &&
                std::get<QStringList>(parsed).join(u' ').contains(QLatin1String("is empty")));
        // The binary: exit 78 on the world-readable one.
        QProcess p;
        QProcessEnvironment pe = QProcessEnvironment::systemEnvironment();
        pe.insert(QStringLiteral("DATABASE_URL_FILE"), open);
        p.setProcessEnvironment(pe);
        p.start(pilothouse::fixtures::Deckhand::binary(), { QStringLiteral("serve") });
        QVERIFY(p.waitForFinished(10000));
        QCOMPARE(p.exitCode(), kExitConfig);
        const QByteArray out = p.readAllStandardOutput() + p.readAllStandardError();
        QVERIFY2(out.contains("DATABASE_URL_FILE") && !out.contains("Leaky3"), out.constData());
    }

    // The heartbeat is private by default (never a shared /tmp); the jobs
    // token must be long enough to matter; the queue has a cap.
    void heartbeatTokenAndQueueDefaults()
    {
        QTemporaryDir runtime;
        QProcessEnvironment e;
        e.insert(QStringLiteral("XDG_RUNTIME_DIR"), runtime.path());
        auto parsed = Config::fromEnvironment(e);
        QVERIFY(std::holds_alternative<Config>(parsed));
        QCOMPARE(std::get<Config>(parsed).workerHeartbeatFile,
                 runtime.filePath(QStringLiteral("deckhand-worker.heartbeat")));
        QCOMPARE(std::get<Config>(parsed).maxQueuedJobs, 10000);
        parsed = Config::fromEnvironment(QProcessEnvironment());
        QVERIFY(!std::get<Config>(parsed).workerHeartbeatFile.startsWith(QLatin1String("/tmp/")));
        QVERIFY(std::get<Config>(parsed).jobsToken.isEmpty());
        e.insert(QStringLiteral("JOBS_API_TOKEN"), QStringLiteral("short"));
        e.insert(QStringLiteral("JOBS_MAX_QUEUED"), QStringLiteral("0"));
        parsed = Config::fromEnvironment(e);
        QVERIFY(std::holds_alternative<QStringList>(parsed));
        const QString why = std::get<QStringList>(parsed).join(u'\n');
        QVERIFY2(why.contains(QLatin1String("JOBS_API_TOKEN: too short")) &&
                     why.contains(QLatin1String("JOBS_MAX_QUEUED")) &&
                     !why.contains(QLatin1String("=short")),
                 qPrintable(why));
    }

    void binaryFailsFastWithExConfig()
    {
        QProcess p;
        QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
        e.insert(QStringLiteral("DATABASE_URL"),
                 QStringLiteral("postgresql://app:TopSecret99@:5432/"));
        e.insert(QStringLiteral("PORT"), QStringLiteral("eighty"));
        e.insert(QStringLiteral("LOG_FORMAT"), QStringLiteral("yaml"));
        e.insert(QStringLiteral("REDIS_URL"), QStringLiteral("redis://:AlsoSecret@"));
        p.setProcessEnvironment(e);
        p.start(pilothouse::fixtures::Deckhand::binary(), { QStringLiteral("serve") });
        QVERIFY(p.waitForFinished(10000));
        QCOMPARE(p.exitStatus(), QProcess::NormalExit);
        QCOMPARE(p.exitCode(), kExitConfig);
        const QByteArray out = p.readAllStandardOutput() + p.readAllStandardError();
        for (const char *name : { "DATABASE_URL", "PORT", "LOG_FORMAT", "REDIS_URL" })
            QVERIFY2(out.contains(name), name);
        QVERIFY2(!out.contains("TopSecret99"), out.constData());
        QVERIFY2(!out.contains("AlsoSecret"), out.constData());
    }

    // Passwords QUrl cannot even parse (special characters, a bad port) are
    // still hidden: redaction works on the raw text.
    void passwordsInUnparsableUrlsStayHidden_data()
    {
        QTest::addColumn<QString>("variable");
        QTest::addColumn<QString>("value");
        QTest::newRow("hash in password")
            << QStringLiteral("DATABASE_URL")
            << QStringLiteral("postgresql://app:Hash#Secret77@db:5432/app");
        QTest::newRow("slash in password")
            << QStringLiteral("DATABASE_URL")
            << QStringLiteral("postgresql://app:Slash/Secret55@db:5432/app");
        QTest::newRow("bad port") << QStringLiteral("DATABASE_URL")
                                  << QStringLiteral("postgresql://app:PlainSecret44@db:54x2/app");
        QTest::newRow("redis hash")
            << QStringLiteral("REDIS_URL") << QStringLiteral("redis://:Pa#ssSecret66@cache:6379/0");
    }
    void passwordsInUnparsableUrlsStayHidden()
    {
        QFETCH(QString, variable);
        QFETCH(QString, value);
        QProcess p;
        QProcessEnvironment e = QProcessEnvironment::systemEnvironment();
        e.insert(variable, value);
        e.insert(QStringLiteral("PORT"), QStringLiteral("not-a-port"));
        p.setProcessEnvironment(e);
        p.start(pilothouse::fixtures::Deckhand::binary(), { QStringLiteral("serve") });
        QVERIFY(p.waitForFinished(10000));
        const QByteArray out = p.readAllStandardOutput() + p.readAllStandardError();
        QVERIFY2(!out.contains("Secret"), out.constData());
        if (p.exitCode() == kExitConfig)
            QVERIFY(out.contains(variable.toLatin1()) || out.contains("PORT"));
    }

    void unknownCommandIsAUsageError()
    {
        QProcess p;
        p.start(pilothouse::fixtures::Deckhand::binary(), { QStringLiteral("dance") });
        QVERIFY(p.waitForFinished(10000));
        QCOMPARE(p.exitCode(), 64);
        QVERIFY(p.readAllStandardError().contains("unknown command"));
    }

    void versionPrintsBuildIdentity()
    {
        QProcess p;
        p.start(pilothouse::fixtures::Deckhand::binary(), { QStringLiteral("--version") });
        QVERIFY(p.waitForFinished(10000));
        QCOMPARE(p.exitCode(), 0);
        QVERIFY(p.readAllStandardOutput().startsWith("deckhand "));
    }
};

QTEST_GUILESS_MAIN(TestConfig)
#include "tst_config.moc"
