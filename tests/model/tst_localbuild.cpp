// Local builds (model/deploy/localbuild.h): the tag a checkout gets, from a
// real git repository (clean, with edits, with new files), the build's step
// and failure sentence, the schema a checkout expects, the history's record
// of builds, and the pinning by image id a deployment of a local build uses.
#include "deploy/deploysteps.h"
#include "deploy/history.h"
#include "deploy/localbuild.h"

#include <QProcess>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

using namespace pilothouse;

namespace {

QString git(const QString &dir, const QStringList &args, bool *ok = nullptr)
{
    QProcess p;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    for (const char *k : { "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME" })
        env.insert(QString::fromLatin1(k), QStringLiteral("Test"));
    for (const char *k : { "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL" })
        env.insert(QString::fromLatin1(k), QStringLiteral("test@example.com"));
    p.setProcessEnvironment(env);
    p.start(QStringLiteral("git"), QStringList { QStringLiteral("-C"), dir } + args);
    p.waitForFinished(30000);
    if (ok)
        *ok = p.exitStatus() == QProcess::NormalExit && p.exitCode() == 0;
    return QString::fromUtf8(p.readAllStandardOutput()).trimmed();
}

void write(const QString &path, const QByteArray &text)
{
    QFile f(path);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write(text);
}

Environment stackIn(const QString &dir)
{
    Environment env;
    env.name = QStringLiteral("local-compose");
    env.kind = EnvironmentKind::Compose;
    env.composeFiles = { dir + QStringLiteral("/compose.yaml") };
    env.project = QStringLiteral("phtest");
    env.imageRepository = QStringLiteral("pilothouse-test/deckhand");
    env.imageServices = { QStringLiteral("api") };
    env.imageSource = Environment::ImageSource::Engine;
    // No engine here: the build stops after naming its tag, which is what is checked.
    env.dockerHost = QStringLiteral("unix:///nonexistent/docker.sock");
    return env;
}

// The tag LocalBuild names for the checkout (the build itself then fails:
// there is no engine), and its failure.
QString tagOf(const QString &dir, LocalBuild::Failure *failure = nullptr)
{
    LocalBuild build(stackIn(dir), {});
    QString tag;
    QObject::connect(&build, &LocalBuild::progress, [&tag](const QString &line) {
        const qsizetype at = line.indexOf(QLatin1String("its build is "));
        if (at >= 0)
            tag = line.mid(at + 13);
    });
    bool done = false;
    build.start(true, [&](const Build &, const LocalBuild::Failure &f) {
        if (failure)
            *failure = f;
        done = true;
    });
    if (!QTest::qWaitFor([&done] { return done; }, 60000))
        return QStringLiteral("(no answer)");
    return tag;
}

} // namespace

class TestLocalBuild : public QObject
{
    Q_OBJECT

private slots:
    void tagsNameTheirSource()
    {
        const QString commit(40, u'a');
        QCOMPARE(buildTag(commit), QStringLiteral("sha-") + commit);
        QCOMPARE(buildTag(commit, QStringLiteral("0123456789abcdef")),
                 QStringLiteral("sha-") + commit + QStringLiteral("-dirty-0123456789ab"));
        QVERIFY(isValidImageTag(buildTag(commit, QString(40, u'f'))));
        QString c;
        bool dirty = true;
        QVERIFY(isBuildTag(buildTag(commit), &c, &dirty));
        QCOMPARE(c, commit);
        QVERIFY(!dirty);
        QVERIFY(isBuildTag(buildTag(commit, QString(12, u'0')), &c, &dirty));
        QVERIFY(dirty);
        QVERIFY(!isBuildTag(QStringLiteral("staging")));
        QVERIFY(!isBuildTag(QStringLiteral("sha-abc")));
    }

    void schemaIsTheHighestMigration()
    {
        QCOMPARE(checkoutSchema({}), -1);
        QCOMPARE(checkoutSchema({ QStringLiteral("0001_create_jobs.sql"),
                                  QStringLiteral("0012_add_index.sql"), QStringLiteral("README.md"),
                                  QStringLiteral("0003_x.sql") }),
                 12);
    }

    void buildLogKeepsTheStepAndTheLastLines()
    {
        BuildLog log;
        QCOMPARE(log.add(QStringLiteral("Building api")), QString());
        QCOMPARE(log.add(QStringLiteral("Step 7/20 : RUN cmake --build /build")),
                 QStringLiteral("Step 7/20 : RUN cmake --build /build"));
        for (int i = 0; i < 30; ++i)
            log.add(QStringLiteral("line %1").arg(i));
        log.add(QStringLiteral("error: expected ';' before '}' token"));
        QCOMPARE(log.step(), QStringLiteral("Step 7/20 : RUN cmake --build /build"));
        QCOMPARE(log.tail().size(), 12);
        QCOMPARE(log.tail().last(), QStringLiteral("error: expected ';' before '}' token"));
        const QString why = log.failure(QStringLiteral("repo:sha-x"), QStringLiteral("exit 1"));
        QVERIFY(why.startsWith(QStringLiteral("Building repo:sha-x failed at \"Step 7/20")));
        QVERIFY(why.contains(QStringLiteral("expected ';'")));
        QVERIFY(why.contains(QStringLiteral("build again")));
        BuildLog kit;
        QCOMPARE(kit.add(QStringLiteral("#8 [builder 3/6] RUN apt-get update")),
                 QStringLiteral("#8 [builder 3/6] RUN apt-get update"));
    }

    // A real repository: clean, then edited, then with a new file; the same
    // content always gives the same tag, and the user's index is untouched.
    void checkoutGivesItsTag()
    {
        QTemporaryDir dir;
        QVERIFY(dir.isValid());
        const QString d = dir.path();
        bool ok = false;
        git(d, { QStringLiteral("init"), QStringLiteral("-q") }, &ok);
        QVERIFY(ok);
        write(d + QStringLiteral("/compose.yaml"), "services: {}\n");
        write(d + QStringLiteral("/main.cpp"), "int main() { return 0; }\n");
        write(d + QStringLiteral("/.gitignore"), "ignored.log\n");
        git(d, { QStringLiteral("add"), QStringLiteral(".") });
        git(d,
            { QStringLiteral("commit"), QStringLiteral("-q"), QStringLiteral("-m"),
              QStringLiteral("first") },
            &ok);
        QVERIFY(ok);
        const QString head = git(d, { QStringLiteral("rev-parse"), QStringLiteral("HEAD") });

        LocalBuild::Failure failure;
        QCOMPARE(tagOf(d, &failure), QStringLiteral("sha-") + head);
        QVERIFY(!failure.message.isEmpty()); // no engine: the build itself failed
        QVERIFY(!failure.notACheckout);

        // An ignored file changes nothing.
        write(d + QStringLiteral("/ignored.log"), "noise\n");
        QCOMPARE(tagOf(d), QStringLiteral("sha-") + head);

        write(d + QStringLiteral("/main.cpp"), "int main() { return 1; }\n");
        const QString edited = tagOf(d);
        QString commit;
        bool dirty = false;
        QVERIFY2(isBuildTag(edited, &commit, &dirty), qPrintable(edited));
        QCOMPARE(commit, head);
        QVERIFY(dirty);
        QCOMPARE(tagOf(d), edited); // the same changes, the same tag

        write(d + QStringLiteral("/new.cpp"), "// new\n");
        const QString added = tagOf(d);
        QVERIFY(isBuildTag(added, nullptr, &dirty) && dirty);
        QVERIFY(added != edited); // a new file is a change of its own

        // Back to the edit alone: its tag again.
        QVERIFY(QFile::remove(d + QStringLiteral("/new.cpp")));
        QCOMPARE(tagOf(d), edited);
        // The user's index saw none of it.
        QCOMPARE(git(d,
                     { QStringLiteral("diff"), QStringLiteral("--cached"),
                       QStringLiteral("--name-only") }),
                 QString());
        QCOMPARE(git(d, { QStringLiteral("status"), QStringLiteral("--porcelain") }),
                 QStringLiteral("M main.cpp"));
    }

    void notACheckoutIsSaid()
    {
        QTemporaryDir dir;
        write(dir.path() + QStringLiteral("/compose.yaml"), "services: {}\n");
        LocalBuild::Failure failure;
        QCOMPARE(tagOf(dir.path(), &failure), QString());
        QVERIFY(failure.notACheckout);
        QVERIFY2(failure.message.contains(QLatin1String("not a git checkout")),
                 qPrintable(failure.message));
    }

    void historyKeepsBuilds()
    {
        QTemporaryDir dir;
        DeploymentHistory h;
        QVERIFY(h.open(dir.filePath(QStringLiteral("h.db"))).ok());
        Build a;
        a.environment = QStringLiteral("local-compose");
        a.repository = QStringLiteral("r/deckhand");
        a.tag = buildTag(QString(40, u'a'));
        a.commit = QString(40, u'a');
        a.imageId = QStringLiteral("sha256:1111");
        a.builtAt = QDateTime::currentDateTimeUtc().addSecs(-60);
        a.schema = 1;
        QVERIFY(h.recordBuild(a).ok());
        Build b = a;
        b.tag = buildTag(QString(40, u'b'), QStringLiteral("cccccccccccc"));
        b.commit = QString(40, u'b');
        b.dirty = true;
        b.imageId = QStringLiteral("sha256:2222");
        b.builtAt = QDateTime::currentDateTimeUtc();
        b.schema = 2;
        QVERIFY(h.recordBuild(b).ok());
        a.imageId = QStringLiteral("sha256:3333"); // the same source built again
        a.builtAt = QDateTime::currentDateTimeUtc().addSecs(-30);
        QVERIFY(h.recordBuild(a).ok());
        const auto rows = h.builds(QStringLiteral("r/deckhand"));
        QVERIFY(rows.ok());
        QCOMPARE(rows->size(), 2);
        QCOMPARE(rows->at(0).tag, b.tag);
        QVERIFY(rows->at(0).dirty);
        QCOMPARE(rows->at(0).schema, 2);
        QCOMPARE(rows->at(1).imageId, QStringLiteral("sha256:3333"));
        QVERIFY(h.builds(QStringLiteral("other/repo"))->isEmpty());
    }

    // A local build's identity is its image id: preflight and the rollback
    // plan compare image ids, and a build never deployed still has its schema.
    void localBuildsArePinnedByImageId()
    {
        PreflightInput in;
        in.environment = QStringLiteral("local-compose");
        in.kind = EnvironmentKind::Compose;
        in.repository = QStringLiteral("r/deckhand");
        in.services = { QStringLiteral("api") };
        in.tag = QStringLiteral("sha-b");
        in.engineKnown = true;
        in.byImageId = true;
        ServiceState s;
        s.service = QStringLiteral("api");
        s.containerId = QStringLiteral("c1");
        s.tag = QStringLiteral("sha-a");
        s.image = QStringLiteral("r/deckhand:sha-a");
        s.imageId = QStringLiteral("sha256:aaaa");
        s.state = RunState::Running;
        in.states = { s };
        const auto plan = preflight(in);
        QVERIFY(plan.ok());
        QCOMPARE(plan->fromDigest, QStringLiteral("sha256:aaaa"));
        QVERIFY(alreadyRunning(*plan, QStringLiteral("sha-a"), QStringLiteral("sha256:aaaa")));
        // The same tag rebuilt (another image): not the same build.
        QVERIFY(!alreadyRunning(*plan, QStringLiteral("sha-a"), QStringLiteral("sha256:bbbb")));

        ServiceState current = s;
        current.digest = s.imageId;
        const auto rollback = planRollback({}, in.services, current, QStringLiteral("sha-old"), 3,
                                           { { QStringLiteral("sha-old"), 2 } });
        QVERIFY(rollback.ok());
        QCOMPARE(rollback->targetSchema, 2);
        QVERIFY(rollback->schemaWarning.contains(QLatin1String("schema version 3")));
    }

    void engineTagsAreListed()
    {
        const QByteArray lines =
            "{\"Repository\":\"r/deckhand\",\"Tag\":\"sha-b\",\"CreatedAt\":\"2026-12-02 "
            "17:00:00 +0000 UTC\"}\n"
            "{\"Repository\":\"r/deckhand\",\"Tag\":\"<none>\",\"CreatedAt\":\"2026-12-01 "
            "17:00:00 +0000 UTC\"}\n"
            "{\"Repository\":\"r/deckhand\",\"Tag\":\"sha-a\",\"CreatedAt\":\"2026-12-01 "
            "17:00:00 +0000 UTC\"}\n";
        QCOMPARE(imageTags(lines),
                 (QStringList { QStringLiteral("sha-b"), QStringLiteral("sha-a") }));
    }
};

QTEST_GUILESS_MAIN(TestLocalBuild)
#include "tst_localbuild.moc"
