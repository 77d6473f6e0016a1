#include "env/dotenv.h"
#include "env/environment.h"
#include "env/environmentdocument.h"
#include "servers.h"
#include "swarm/stackfile.h"

#include <QCryptographicHash>
#include <QDir>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSettings>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

using namespace pilothouse;

using pilothouse::fixtures::jsonQuotes;

class TestEnvironment final : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;

    Expected<EnvironmentSet> parse(const QByteArray &json)
    {
        return parseEnvironments(json, QStringLiteral("envs.json"), QDir(m_dir.path()));
    }

private slots:
    void initTestCase()
    {
        // The stack folder choice goes to a throwaway settings file.
        QStandardPaths::setTestModeEnabled(true);
        QCoreApplication::setApplicationName(QStringLiteral("pilothouse-test"));
        QVERIFY(QSettings().fileName().contains(QLatin1String(".qttest")));
        QSettings().clear();
        QVERIFY(m_dir.isValid());
        QFile compose(m_dir.filePath(QStringLiteral("compose.yaml")));
        QVERIFY(compose.open(QIODevice::WriteOnly));
        compose.write("services: {}\n");
    }

    void builtInDefaultsAreValid()
    {
        const auto set = loadEnvironments(defaultEnvironmentsResource());
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        QCOMPARE(set->names(),
                 (QStringList { QStringLiteral("local"), QStringLiteral("local-compose"),
                                QStringLiteral("local-swarm"), QStringLiteral("staging") }));
        const Environment *swarm = set->find(QStringLiteral("local-swarm"));
        QVERIFY(swarm);
        QCOMPARE(int(swarm->kind), int(EnvironmentKind::Swarm));
        QCOMPARE(swarm->stackName(), QStringLiteral("pilothouse"));
        QVERIFY(swarm->composeFiles.first().endsWith(QLatin1String("/compose.stack.yaml")));
        // Every external secret compose.stack.yaml declares has a template.
        const auto file = readStackFile(swarm->composeFiles.first(),
                                        [](const QString &) { return std::nullopt; });
        QVERIFY(file.ok());
        QVERIFY2(file->problems.isEmpty(), qPrintable(file->problems.join(u'\n')));
        QCOMPARE(file->secrets.size(), 4);
        for (const StackSecret &secret : file->secrets) {
            QVERIFY(secret.external);
            QVERIFY2(std::any_of(swarm->swarmSecrets.cbegin(), swarm->swarmSecrets.cend(),
                                 [&secret](const auto &p) { return p.first == secret.key; }),
                     qPrintable(secret.key));
        }
        const Environment *local = set->find(QStringLiteral("local"));
        QVERIFY(local);
        QCOMPARE(int(local->kind), int(EnvironmentKind::Native));
        QVERIFY(!local->usesDocker());
        QCOMPARE(local->processes.size(), 1);
        QVERIFY(local->database && local->database->isSqlite());
        // ${DATA_DIR} was expanded to an absolute path.
        QVERIFY(local->database->dsn.path().startsWith(QLatin1Char('/')));
        const Environment *compose = set->find(QStringLiteral("local-compose"));
        QVERIFY(compose);
        QCOMPARE(compose->project, QStringLiteral("pilothouse"));
        // Its PostgreSQL is in the stack, unpublished: found through the engine.
        QVERIFY(compose->database && compose->database->inStack);
        QCOMPARE(compose->database->inStack->service, QStringLiteral("postgres"));
        QCOMPARE(compose->database->inStack->passwordVariable, QStringLiteral("POSTGRES_PASSWORD"));
        QCOMPARE(compose->imageServices,
                 (QStringList { QStringLiteral("api"), QStringLiteral("worker") }));
        QVERIFY(compose->composeFiles.first().endsWith(QLatin1String("/compose.yaml")));
        QVERIFY(QFileInfo::exists(compose->composeFiles.first()));
        const Environment *staging = set->find(QStringLiteral("staging"));
        QVERIFY(staging && staging->isRemote());
        QCOMPARE(staging->dockerHost, QStringLiteral("ssh://deploy@staging.example.com"));
    }

    void explicitPathWins()
    {
        QCOMPARE(resolveEnvironmentsPath(QStringLiteral("/x/y.json")), QStringLiteral("/x/y.json"));
        QVERIFY(!resolveEnvironmentsPath({}).isEmpty());
    }

    void errors_data()
    {
        QTest::addColumn<QByteArray>("json");
        QTest::addColumn<QStringList>("expected");

        QTest::newRow("syntax") << QByteArray("{\n\"version\": 1,\n\"environments\": [,]\n}")
                                << QStringList { QStringLiteral(
                                       "envs.json: line 3: not valid JSON") };
        QTest::newRow("unknown key")
            << (jsonQuotes(
                   "{'version':1,'environments':[{'name':'a','kind':'native','procesess':[],"
                   "'processes':[{'name':'p','program':'/bin/true'}]}]}"))
            << QStringList { QStringLiteral(
                   "envs.json: environment \"a\": procesess: unknown key") };
        QTest::newRow("kind")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'k8s'}]}"))
            << QStringList { QStringLiteral(
                   "environment \"a\": kind: expected \"native\", \"compose\" or \"swarm\", "
                   "got \"k8s\"") };
        QTest::newRow("swarm without its stack")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'swarm'}]}"))
            << QStringList { QStringLiteral("swarm: a swarm environment needs {\"stack\"") };
        QTest::newRow("swarm secret given as a value")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'swarm',"
                           "'swarm':{'stack':'s','files':['stack.yaml'],"
                           "'secrets':{'token':'hunter2'}}}]}"))
            << QStringList { QStringLiteral("swarm.secrets.token: holds a value itself") };
        QTest::newRow("swarm with compose keys")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'swarm',"
                           "'swarm':{'stack':'Bad Stack','files':['stack.yaml']},"
                           "'compose':{'files':['compose.yaml'],'project':'p'}}]}"))
            << QStringList { QStringLiteral("compose: not for kind \"swarm\""),
                             QStringLiteral("swarm.stack: \"Bad Stack\" is not a valid stack "
                                            "name") };
        QTest::newRow("bad name and project")
            << (jsonQuotes("{'version':1,'environments':[{'name':'Bad Name','kind':'compose',"
                           "'compose':{'files':['compose.yaml'],'project':'My;Project'}}]}"))
            << QStringList { QStringLiteral("environment \"Bad Name\": name: expected lowercase"),
                             QStringLiteral(
                                 "compose.project: \"My;Project\" is not a valid project name") };
        QTest::newRow("missing compose file")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'compose',"
                           "'compose':{'files':['nope.yaml'],'project':'p'}}]}"))
            << QStringList { QStringLiteral("compose.files: "),
                             QStringLiteral("nope.yaml does not exist") };
        QTest::newRow("password in dsn")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'database':{'dsn':'postgresql://app:hunter2@db:5432/app'}}]}"))
            << QStringList { QStringLiteral("database.dsn: must not contain a password") };
        QTest::newRow("password in dsn query")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'database':{'dsn':'postgresql://app@db:5432/app?password=hunter2'}}]}"))
            << QStringList { QStringLiteral(
                   "database.dsn: the option \"password\" is not allowed in the URL") };
        // libpq options are a conninfo string: a value with a space or '='
        // would smuggle in another option (host, sslmode, ...).
        QTest::newRow("dsn option smuggled in a value")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'database':{'dsn':'postgresql://app@db:5432/"
                           "app?sslmode=disable%20host=x'}}]}"))
            << QStringList { QStringLiteral("database.dsn: sslmode=\"disable host=x\" is not "
                                            "allowed: expected disable, allow, prefer") };
        QTest::newRow("dsn option with a raw space")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'database':{'dsn':'postgresql://app@db:5432/"
                           "app?sslmode=disable host=x'}}]}"))
            << QStringList { QStringLiteral("database.dsn: ") };
        QTest::newRow("dsn unknown option")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'database':{'dsn':'postgresql://app@db:5432/app?host=evil'}}]}"))
            << QStringList { QStringLiteral("database.dsn: the option \"host\" is not allowed") };
        QTest::newRow("dsn option value with =")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'database':{'dsn':'postgresql://app@db:5432/"
                           "app?application_name=a%3Db'}}]}"))
            << QStringList { QStringLiteral("database.dsn: application_name=\"a=b\" is not "
                                            "allowed") };
        QTest::newRow("database in the stack of a native environment")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'database':{'compose':{'service':'postgres'}}}]}"))
            << QStringList { QStringLiteral("database.compose: a database in the stack needs a "
                                            "compose or swarm environment") };
        QTest::newRow("database in the stack and a dsn")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'compose',"
                           "'compose':{'files':['compose.yaml'],'project':'p'},"
                           "'database':{'dsn':'postgresql://u@h/d','compose':{'service':'db',"
                           "'password':'not a name'}}}]}"))
            << QStringList { QStringLiteral("database.dsn: not with database.compose"),
                             QStringLiteral("database.compose.password: expected the name of "
                                            "the stack's variable") };
        QTest::newRow("token realm not a host")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'compose',"
                           "'compose':{'files':['compose.yaml'],'project':'p'},"
                           "'image':{'repository':'ghcr.io/o/d','service':'api',"
                           "'tokenRealm':'https://auth.example.com/token'}}]}"))
            << QStringList { QStringLiteral("image.tokenRealm: expected the host name") };
        QTest::newRow("two password sources")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'database':{'dsn':'postgresql://app@db:5432/"
                           "app','passwordEnv':'PW','keychain':true}}]}"))
            << QStringList { QStringLiteral(
                   "database: passwordEnv and keychain both name a password source") };
        QTest::newRow("keychain for sqlite")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'database':{'dsn':'sqlite:///tmp/x.db','keychain':'yes'}}]}"))
            << QStringList { QStringLiteral("database.keychain: expected true or false") };
        QTest::newRow("credentials in a bad url are not echoed")
            << (jsonQuotes(
                   "{'version':1,'environments':[{'name':'a','kind':'native',"
                   "'processes':[{'name':'p','program':'/bin/true'}],"
                   "'services':[{'name':'x','health':[{'url':'ftp://admin:hunter2@h/x'}]}]}]}"))
            << QStringList { QStringLiteral("got \"ftp://***@h/x\"") };
        QTest::newRow("service name and url")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'services':[{'name':'-x','health':[{'url':'ftp://h/"
                           "x','intervalSeconds':0}]}]}]}"))
            << QStringList {
                   QStringLiteral("services[0].name: \"-x\" is not a valid service name"),
                   QStringLiteral("services[0].health[0].url: expected an http:// or https:// URL"),
                   QStringLiteral(
                       "services[0].health[0].intervalSeconds: expected a number from 0.1")
               };
        QTest::newRow("docker host")
            << (jsonQuotes(
                   "{'version':1,'environments':[{'name':'a','kind':'compose','docker':{'host':'"
                   "staging:22'},"
                   "'compose':{'files':['compose.yaml'],'project':'p'}}]}"))
            << QStringList { QStringLiteral(
                   "docker.host: expected unix:///path, tcp://host:port or ssh://user@host") };
        QTest::newRow("unset variable")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/"
                           "true','env':{'X':'${PILOTHOUSE_SURELY_UNSET}'}}]}]}"))
            << QStringList { QStringLiteral(
                   "processes[0].env.X: ${PILOTHOUSE_SURELY_UNSET} is not set") };
        QTest::newRow("duplicate")
            << (jsonQuotes(
                   "{'version':1,'environments':["
                   "{'name':'a','kind':'native','processes':[{'name':'p','program':'/bin/true'}]},"
                   "{'name':'a','kind':'native','processes':[{'name':'p','program':'/bin/"
                   "true'}]}]}"))
            << QStringList { QStringLiteral("environment \"a\": name: defined twice") };
        QTest::newRow("image")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/"
                           "true'}],'image':{'repository':'Ghcr.io/"
                           "X:latest','service':'api'}}]}"))
            << QStringList { QStringLiteral(
                   "image.repository: \"Ghcr.io/X:latest\" is not an image repository") };
        QTest::newRow("image variables and token")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'image':{'repository':'ghcr.io/x/y','service':'api',"
                           "'tagVariable':'TAG-1','tokenEnv':'GH_TOKEN','keychain':true}}]}"))
            << QStringList { QStringLiteral("image.tagVariable: expected the name of a variable"),
                             QStringLiteral("image: tokenEnv and keychain both name a token "
                                            "source"),
                             QStringLiteral("image.user: a registry token needs the user name") };
        QTest::newRow("deploy gate")
            << (jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                           "'processes':[{'name':'p','program':'/bin/true'}],"
                           "'image':{'repository':'ghcr.io/x/y','service':'api'},"
                           "'deploy':{'healthWindowSeconds':30,'timeoutSeconds':20,'x':1}}]}"))
            << QStringList { QStringLiteral("deploy.timeoutSeconds: must be longer than "
                                            "deploy.healthWindowSeconds"),
                             QStringLiteral("deploy.x: unknown key") };
        QTest::newRow("version") << (jsonQuotes("{'version':2,'environments':[]}"))
                                 << QStringList { QStringLiteral("envs.json: version: expected 1"),
                                                  QStringLiteral(
                                                      "environments: expected a non-empty list") };
    }

    void errors()
    {
        QFETCH(QByteArray, json);
        QFETCH(QStringList, expected);
        const auto set = parse(json);
        QVERIFY(!set.ok());
        for (const QString &e : expected)
            QVERIFY2(set.error().contains(e),
                     qPrintable(QStringLiteral("missing \"%1\" in:\n%2").arg(e, set.error())));
        // A password never comes back in a message.
        QVERIFY(!set.error().contains(QLatin1String("hunter2")));
    }

    void everyProblemAtOnce()
    {
        const auto set =
            parse(jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'compose',"
                             "'compose':{'files':[],'project':'UPPER'},'bogus':1}]}"));
        QVERIFY(!set.ok());
        QCOMPARE(set.error().split(QLatin1Char('\n')).size(), 3);
    }

    void validFile()
    {
        const auto set = parse(jsonQuotes(
            "{'version':1,'environments':[{'name':'dev','kind':'compose',"
            "'docker':{'context':'remote-1'},"
            "'compose':{'files':['compose.yaml'],'project':'dev_stack'},"
            "'services':[{'name':'api','health':[{'url':'http://127.0.0.1:8000/"
            "readyz','intervalSeconds':0.5,'timeoutSeconds':1}]}],"
            "'database':{'dsn':'postgresql://app@127.0.0.1:5432/"
            "app?sslmode=verify-full&target_session_attrs=read-write&application_name=panel'"
            ",'passwordEnv':'APP_PW'},"
            "'image':{'repository':'registry.local:5000/team/deckhand','service':'api',"
            "'tokenRealm':'auth.registry.local'}}]}"));
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        const Environment &e = set->environments.first();
        using Option = std::pair<QString, QString>;
        QCOMPARE(e.database->options(),
                 (QList<Option> {
                     { QStringLiteral("sslmode"), QStringLiteral("verify-full") },
                     { QStringLiteral("target_session_attrs"), QStringLiteral("read-write") },
                     { QStringLiteral("application_name"), QStringLiteral("panel") } }));
        QCOMPARE(e.registryTokenRealm, QStringLiteral("auth.registry.local"));
        QCOMPARE(e.dockerContext, QStringLiteral("remote-1"));
        QVERIFY(e.isRemote());
        QCOMPARE(e.composeFiles, QStringList { m_dir.filePath(QStringLiteral("compose.yaml")) });
        QCOMPARE(e.services.first().endpoints.first().intervalMs, 500);
        QCOMPARE(e.services.first().endpoints.first().timeoutMs, 1000);
        QCOMPARE(e.database->passwordEnv, QStringLiteral("APP_PW"));
        QCOMPARE(e.imageRepository, QStringLiteral("registry.local:5000/team/deckhand"));
        // Defaults: the compose variables of this repository's compose.yaml, a 10 s window.
        QCOMPARE(e.repositoryVariable, QStringLiteral("DECKHAND_IMAGE"));
        QCOMPARE(e.tagVariable, QStringLiteral("DECKHAND_TAG"));
        QCOMPARE(e.healthWindowMs, 10000);
        QCOMPARE(e.deployTimeoutMs, 120000);
    }

    void deploySettings()
    {
        const auto set = parse(jsonQuotes(
            "{'version':1,'environments':[{'name':'dev','kind':'compose',"
            "'compose':{'files':['compose.yaml'],'project':'dev'},"
            "'image':{'repository':'ghcr.io/team/app','service':'web','tagVariable':'APP_TAG',"
            "'repositoryVariable':'APP_IMAGE','user':'bot','tokenEnv':'GH_TOKEN'},"
            "'deploy':{'healthWindowSeconds':2.5,'timeoutSeconds':60}}]}"));
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        const Environment &e = set->environments.first();
        QCOMPARE(e.tagVariable, QStringLiteral("APP_TAG"));
        QCOMPARE(e.repositoryVariable, QStringLiteral("APP_IMAGE"));
        QCOMPARE(e.registryUser, QStringLiteral("bot"));
        QCOMPARE(e.registryTokenEnv, QStringLiteral("GH_TOKEN"));
        QCOMPARE(e.healthWindowMs, 2500);
        QCOMPARE(e.deployTimeoutMs, 60000);
    }

    void rolloutStrategy()
    {
        const auto parsed = [this](const char *deploy, const char *kind = "compose") {
            return parse(jsonQuotes(
                QStringLiteral("{'version':1,'environments':[{'name':'dev','kind':'%1',"
                               "%2'deploy':%3}]}")
                    .arg(QLatin1String(kind),
                         QLatin1String(qstrcmp(kind, "compose") == 0
                                           ? "'compose':{'files':['compose.yaml'],'project':'dev'},"
                                             "'image':{'repository':'r/app','services':['api']},"
                                           : "'processes':[{'name':'a','program':'true'}],"),
                         QLatin1String(deploy))
                    .toUtf8()
                    .constData()));
        };
        auto set = parsed("{'strategy':'start-first','containerPort':8080}");
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        QCOMPARE(set->environments.size(), 1);
        QCOMPARE(int(set->environments.first().rollout), int(Environment::Rollout::StartFirst));
        QCOMPARE(set->environments.first().containerPort, 8080);
        set = parsed("{'strategy':'recreate'}");
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        QCOMPARE(int(set->environments.first().rollout), int(Environment::Rollout::Recreate));
        QCOMPARE(set->environments.first().containerPort, 0);
        set = parsed("{}"); // not said: today's recreate
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        QCOMPARE(int(set->environments.first().rollout), int(Environment::Rollout::Recreate));
        // Refusals name the field and what to write.
        const auto refused = [&parsed](const char *deploy, const char *kind, const char *says) {
            const auto bad = parsed(deploy, kind);
            const QString why = bad ? bad->invalid.value(0).reason : bad.error();
            return (bad && bad->environments.isEmpty() && why.contains(QLatin1String(says))) ||
                (!bad && why.contains(QLatin1String(says)));
        };
        QVERIFY(refused("{'strategy':'blue-green'}", "compose",
                        "deploy.strategy: \"blue-green\" is not a strategy; expected "
                        "\"recreate\""));
        QVERIFY(refused("{'containerPort':70000}", "compose", "deploy.containerPort"));
        QVERIFY(refused("{'containerPort':80.5}", "compose", "expected a port number"));
        QVERIFY(refused("{'strategy':'start-first'}", "native",
                        "start-first needs a compose environment"));
    }

    void builtInComposeEnvironmentsStartFirst()
    {
        QFile f(defaultEnvironmentsResource());
        QVERIFY(f.open(QIODevice::ReadOnly));
        const QJsonArray envs =
            QJsonDocument::fromJson(f.readAll()).object().value(u"environments").toArray();
        int compose = 0;
        for (const QJsonValue &v : envs) {
            const QJsonObject e = v.toObject();
            if (e.value(u"kind").toString() != QLatin1String("compose"))
                continue;
            ++compose;
            QCOMPARE(e.value(u"deploy").toObject().value(u"strategy").toString(),
                     QStringLiteral("start-first"));
            QCOMPARE(e.value(u"deploy").toObject().value(u"containerPort").toInt(), 8000);
        }
        QCOMPARE(compose, 2);
    }

    // The form view of the same checks: each problem with its environment and field.
    void issuesNameTheirField()
    {
        const QList<EnvironmentIssue> issues = environmentIssues(
            jsonQuotes("{'version':1,'environments':[{'name':'dev','kind':'compose',"
                       "'compose':{'files':['compose.yaml'],'project':'Bad Name'},"
                       "'services':[{'name':'api','health':[{'url':'ftp://x'}]}]}]}"),
            QStringLiteral("envs.json"), QDir(m_dir.path()));
        QCOMPARE(issues.size(), 2);
        QCOMPARE(issues.at(0).environment, QStringLiteral("dev"));
        QCOMPARE(issues.at(0).field, QStringLiteral("compose.project"));
        QVERIFY(issues.at(0).message.contains(QLatin1String("not a valid project name")));
        QCOMPARE(issues.at(1).field, QStringLiteral("services[0].health[0].url"));
        QVERIFY(environmentIssues(jsonQuotes("{'version':1,'environments':[{'name':'ok','kind':"
                                             "'native','processes':[{'name':'p','program':'/bin/"
                                             "true'}]}]}"),
                                  QStringLiteral("envs.json"), QDir(m_dir.path()))
                    .isEmpty());
        const auto broken = environmentIssues("{", QStringLiteral("envs.json"), QDir(m_dir.path()));
        QCOMPARE(broken.size(), 1);
        QVERIFY(broken.first().message.contains(QLatin1String("not valid JSON")));
    }

    // Saving validates first and replaces the file whole, or not at all.
    void saveIsAllOrNothing()
    {
        const QString path = m_dir.filePath(QStringLiteral("saved/environments.json"));
        const QByteArray good = jsonQuotes("{'version':1,'environments':[{'name':'ok','kind':"
                                           "'native','processes':[{'name':'p','program':'/bin/"
                                           "true'}]}]}");
        const Outcome saved = saveEnvironmentsFile(path, good);
        QVERIFY2(saved.ok(), qPrintable(saved ? QString() : saved.error()));
        QFile f(path);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), good);
        f.close();
        const Outcome refused =
            saveEnvironmentsFile(path, jsonQuotes("{'version':1,'environments':[{'name':'Bad'}]}"));
        QVERIFY(!refused.ok());
        QVERIFY2(refused.error().contains(QLatin1String("name")), qPrintable(refused.error()));
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), good);
    }

    // The file as a document: typed fields in and out, everything else kept.
    // A swarm environment in the form: its stack files and name in the
    // compose fields' places, its secrets' templates kept on a save.
    void documentEditsASwarmEnvironment()
    {
        EnvironmentDocument doc(
            jsonQuotes("{'version':1,'environments':[{'name':'sw','kind':'swarm',"
                       "'swarm':{'stack':'deck','files':['stack.yaml'],'secrets':{'pw':'${PW}'}},"
                       "'docker':{'context':'prod'},'services':[{'name':'api'}]}]}"));
        EnvironmentFields f = doc.fields(0);
        QCOMPARE(f.kind, QStringLiteral("swarm"));
        QCOMPARE(f.project, QStringLiteral("deck"));
        QCOMPARE(f.composeFiles, QStringList { QStringLiteral("stack.yaml") });
        QCOMPARE(f.dockerContext, QStringLiteral("prod"));
        f.project = QStringLiteral("deck2");
        doc.setFields(0, f);
        const QJsonObject e = QJsonDocument::fromJson(doc.text())
                                  .object()
                                  .value(u"environments")
                                  .toArray()
                                  .first()
                                  .toObject();
        QCOMPARE(e.value(u"kind").toString(), QStringLiteral("swarm"));
        QVERIFY(!e.contains(u"compose"));
        const QJsonObject swarm = e.value(u"swarm").toObject();
        QCOMPARE(swarm.value(u"stack").toString(), QStringLiteral("deck2"));
        QCOMPARE(swarm.value(u"secrets").toObject().value(u"pw").toString(),
                 QStringLiteral("${PW}"));
        QCOMPARE(e.value(u"docker").toObject().value(u"context").toString(),
                 QStringLiteral("prod"));
    }

    void documentKeepsWhatItDoesNotEdit()
    {
        EnvironmentDocument doc(jsonQuotes(
            "{'version':1,'x-note':'kept','environments':[{'name':'dev','kind':'compose',"
            "'x-owner':'team a','compose':{'files':['${HOME}/stack.yaml'],'project':'dev',"
            "'profiles':'kept too'},'image':{'repository':'ghcr.io/o/d','service':'api',"
            "'tagVariable':'APP_TAG'},'services':[{'name':'api','health':[{'url':'http://h/"
            "readyz','intervalSeconds':0.5}]},{'name':'worker'}],"
            "'deploy':{'timeoutSeconds':60}}]}"));
        QCOMPARE(doc.size(), 1);
        EnvironmentFields f = doc.fields(0);
        QCOMPARE(f.name, QStringLiteral("dev"));
        QCOMPARE(f.composeFiles, QStringList { QStringLiteral("${HOME}/stack.yaml") });
        QCOMPARE(f.imageServices, QStringList { QStringLiteral("api") }); // the older form, read
        QCOMPARE(f.endpoints.size(), 2);
        QCOMPARE(f.endpoints.at(0).intervalSeconds, QStringLiteral("0.5"));
        QCOMPARE(f.endpoints.at(1).url, QString());
        // Defaults come from Environment itself.
        QCOMPARE(f.healthWindowSeconds, Environment {}.healthWindowMs / 1000.0);
        QCOMPARE(f.deployTimeoutSeconds, 60.0);
        f.imageServices << QStringLiteral("worker");
        f.deployTimeoutSeconds = EnvironmentFields::defaultDeployTimeoutSeconds();
        f.endpoints[0].timeoutSeconds = QStringLiteral("soon"); // kept as typed
        doc.setFields(0, f);
        const QJsonObject root = QJsonDocument::fromJson(doc.text()).object();
        QCOMPARE(root.value(u"x-note").toString(), QStringLiteral("kept"));
        const QJsonObject e = root.value(u"environments").toArray().first().toObject();
        QCOMPARE(e.value(u"x-owner").toString(), QStringLiteral("team a"));
        QCOMPARE(e.value(u"compose").toObject().value(u"profiles").toString(),
                 QStringLiteral("kept too"));
        const QJsonObject image = e.value(u"image").toObject();
        QVERIFY(!image.contains(u"service")); // written in the current form
        QCOMPARE(image.value(u"services").toArray().size(), 2);
        QCOMPARE(image.value(u"tagVariable").toString(), QStringLiteral("APP_TAG"));
        QVERIFY(!e.contains(u"deploy")); // a default is not written
        // Problems belong to the form's fields.
        const auto issues = doc.issues(m_dir.filePath(QStringLiteral("envs.json")));
        QStringList fields;
        for (const auto &i : issues)
            fields << i.field + QLatin1Char('=') + i.path;
        QVERIFY2(fields.contains(QStringLiteral("services=services[0].health[0].timeoutSeconds")),
                 qPrintable(fields.join(u' ')));
        QVERIFY2(fields.contains(QStringLiteral("compose.files=compose.files")),
                 qPrintable(fields.join(u' ')));
        QCOMPARE(EnvironmentDocument::fieldFor(QStringLiteral("image.tokenRealm")),
                 QStringLiteral("image.repository"));
        QCOMPARE(EnvironmentDocument::fieldFor(QStringLiteral("database.passwordEnv")),
                 QStringLiteral("database.passwordEnv"));
        QCOMPARE(EnvironmentDocument::fieldFor(QStringLiteral("version")), QString());
        const int added = doc.add();
        QCOMPARE(doc.name(added), QStringLiteral("new"));
        QCOMPARE(doc.name(doc.add()), QStringLiteral("new-2"));
        doc.remove(added);
        QCOMPARE(doc.size(), 2);
    }

    // The save transaction: nothing written while invalid; the old file kept
    // as .broken when asked; otherwise written whole.
    void documentSaves()
    {
        const QString path = m_dir.filePath(QStringLiteral("saved.json"));
        QFile old(path);
        QVERIFY(old.open(QIODevice::WriteOnly));
        old.write("{ broken");
        old.close();
        EnvironmentDocument doc(
            jsonQuotes("{'version':1,'environments':[{'name':'a','kind':'native',"
                       "'processes':[{'name':'p','program':'/bin/true'}]}]}"));
        EnvironmentFields f = doc.fields(0);
        f.name = QStringLiteral("Bad Name");
        doc.setFields(0, f);
        std::optional<Outcome> result;
        doc.save({ path, {}, true }, this, [&result](Outcome o) { result = o; });
        QTRY_VERIFY(result.has_value());
        QVERIFY(!result->ok());
        QVERIFY2(result->error().contains(QLatin1String("name")), qPrintable(result->error()));
        QVERIFY(!QFile::exists(path + QStringLiteral(".broken")));
        QVERIFY(old.open(QIODevice::ReadOnly));
        QCOMPARE(old.readAll(), QByteArray("{ broken"));
        old.close();

        f.name = QStringLiteral("a");
        doc.setFields(0, f);
        result.reset();
        doc.save({ path, {}, true }, this, [&result](Outcome o) { result = o; });
        QTRY_VERIFY(result.has_value());
        QVERIFY2(result->ok(), qPrintable(result->ok() ? QString() : result->error()));
        QFile broken(path + QStringLiteral(".broken"));
        QVERIFY(broken.open(QIODevice::ReadOnly));
        QCOMPARE(broken.readAll(), QByteArray("{ broken"));
        const auto set = loadEnvironments(path);
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        QCOMPARE(set->names(), QStringList { QStringLiteral("a") });
    }

    // A fresh checkout's .env: made from .env.example, secrets random, 0600,
    // never replacing one that is there.
    void dotEnvFromExample()
    {
        QStringList generated;
        const QByteArray filled = fillSecrets(
            "# comment=kept\nDECKHAND_TAG=staging\nPOSTGRES_PASSWORD=change-me-postgres\n"
            "API_KEY=change-me\nREDIS_PASSWORD=\n  GH_TOKEN=x\n",
            &generated,
            [](const QString &name) -> QByteArray { return QByteArray("R-") + name.toUtf8(); });
        QCOMPARE(filled,
                 QByteArray("# comment=kept\nDECKHAND_TAG=staging\nPOSTGRES_PASSWORD=R-POSTGRES_"
                            "PASSWORD\nAPI_KEY=R-API_KEY\nREDIS_PASSWORD=R-REDIS_PASSWORD\n  "
                            "GH_TOKEN=R-GH_TOKEN\n"));
        QCOMPARE(generated,
                 (QStringList { QStringLiteral("POSTGRES_PASSWORD"), QStringLiteral("API_KEY"),
                                QStringLiteral("REDIS_PASSWORD"), QStringLiteral("GH_TOKEN") }));
        QCOMPARE(randomSecret().size(), 64);
        QVERIFY(randomSecret() != randomSecret());

        const QString dir = m_dir.filePath(QStringLiteral("stack"));
        QVERIFY(QDir().mkpath(dir));
        QFile compose(dir + QStringLiteral("/compose.yaml"));
        QVERIFY(compose.open(QIODevice::WriteOnly));
        compose.write("x:\n  a: ${PH_TEST_PW:?set PH_TEST_PW in .env}\n  b: ${PH_TEST_OPT:-x}\n"
                      "  c: ${PH_TEST_USER?needed}\n");
        compose.close();
        QCOMPARE(missingRequiredVariables(compose.fileName(), dir + QStringLiteral("/.env")),
                 (QStringList { QStringLiteral("PH_TEST_PW"), QStringLiteral("PH_TEST_USER") }));
        // No example: nothing made.
        auto made = ensureDotEnv(dir);
        QVERIFY(made.ok());
        QVERIFY(made->path.isEmpty());
        QFile example(dir + QStringLiteral("/.env.example"));
        QVERIFY(example.open(QIODevice::WriteOnly));
        example.write("PH_TEST_PW=change-me\nPH_TEST_USER=app\n");
        example.close();
        made = ensureDotEnv(dir);
        QVERIFY2(made.ok(), qPrintable(made ? QString() : made.error()));
        QCOMPARE(made->path, dir + QStringLiteral("/.env"));
        QCOMPARE(made->generated, QStringList { QStringLiteral("PH_TEST_PW") });
        QFileInfo info(made->path);
        QCOMPARE(int(info.permissions() & 0x7777),
                 int(QFile::ReadOwner | QFile::WriteOwner | QFile::ReadUser | QFile::WriteUser));
        QFile env(made->path);
        QVERIFY(env.open(QIODevice::ReadOnly));
        const QByteArray text = env.readAll();
        env.close();
        QVERIFY(!text.contains("change-me"));
        QVERIFY(text.contains("PH_TEST_USER=app"));
        QVERIFY(missingRequiredVariables(compose.fileName(), made->path).isEmpty());
        // The stack's own view of a variable: the environment, .env, then the default.
        const QStringList files { compose.fileName() };
        QCOMPARE(stackVariable(QStringLiteral("PH_TEST_USER"), files, made->path),
                 QStringLiteral("app"));
        QCOMPARE(stackVariable(QStringLiteral("PH_TEST_OPT"), files, made->path),
                 QStringLiteral("x"));
        qputenv("PH_TEST_OPT", "from-env");
        QCOMPARE(stackVariable(QStringLiteral("PH_TEST_OPT"), files, made->path),
                 QStringLiteral("from-env"));
        qunsetenv("PH_TEST_OPT");
        QCOMPARE(stackVariable(QStringLiteral("PH_TEST_NONE"), files, made->path), QString());
        // Never replaced.
        made = ensureDotEnv(dir);
        QVERIFY(made.ok() && made->path.isEmpty());
        QVERIFY(env.open(QIODevice::ReadOnly));
        QCOMPARE(env.readAll(), text);
    }

    // One environment's problem never blocks the others: loading lists it,
    // with its reason, and keeps the rest; saving still refuses it.
    void invalidEnvironmentListedOthersLoad()
    {
        const QByteArray json = R"({"version": 1, "environments": [
            {"name": "good", "kind": "native",
             "processes": [{"name": "p", "program": "/bin/true"}]},
            {"name": "gone", "kind": "compose", "description": "its file is not there",
             "compose": {"files": ["nowhere.yaml"], "project": "p"}},
            {"name": "odd", "kind": "native", "processes": [], "colour": "blue"}]})";
        QFile file(m_dir.filePath(QStringLiteral("mixed.json")));
        QVERIFY(file.open(QIODevice::WriteOnly));
        file.write(json);
        file.close();
        const auto set = loadEnvironments(file.fileName());
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        QCOMPARE(set->names(), QStringList { QStringLiteral("good") });
        QCOMPARE(set->invalid.size(), 2);
        const InvalidEnvironment *gone = set->findInvalid(QStringLiteral("gone"));
        QVERIFY(gone);
        QCOMPARE(gone->kind, QStringLiteral("compose"));
        QCOMPARE(gone->description, QStringLiteral("its file is not there"));
        QVERIFY2(gone->reason.startsWith(QLatin1String("compose.files: ")) &&
                     gone->reason.contains(QLatin1String("nowhere.yaml does not exist")),
                 qPrintable(gone->reason));
        QVERIFY(!gone->needsStackFolder); // a user's file: its own path is wrong
        const InvalidEnvironment *odd = set->findInvalid(QStringLiteral("odd"));
        QVERIFY(odd);
        QCOMPARE(odd->reason.count(QLatin1Char('\n')), 1); // both problems, one per line
        QVERIFY(odd->reason.contains(QLatin1String("colour: unknown key")));
        // Strict parsing (what the settings dialog saves through) refuses the file.
        QVERIFY(!parse(json).ok());
        QVERIFY(
            !saveEnvironmentsFile(m_dir.filePath(QStringLiteral("mixed-saved.json")), json).ok());
        QVERIFY(!QFile::exists(m_dir.filePath(QStringLiteral("mixed-saved.json"))));
    }

    // An internal endpoint is the remote host's view: only over SSH, plain http.
    void internalEndpointsNeedAnSshEngine()
    {
        const auto env = [](const char *host, const char *url) {
            const QByteArray text =
                QByteArray("{'version': 1, 'environments': [{'name': 's', 'kind': 'compose', "
                           "'docker': {'host': '") +
                host +
                "'}, 'compose': {'files': ['compose.yaml'], 'project': 'p'}, "
                "'services': [{'name': 'api', 'health': [{'url': '" +
                url + "', 'internal': true}]}]}]}";
            return jsonQuotes(text.constData());
        };
        const auto ok = parse(env("ssh://deploy@example.com", "http://127.0.0.1:8000/readyz"));
        QVERIFY2(ok.ok(), qPrintable(ok ? QString() : ok.error()));
        QVERIFY(ok->environments.first().services.first().endpoints.first().internal);
        const auto local = parse(env("tcp://127.0.0.1:2375", "http://127.0.0.1:8000/readyz"));
        QVERIFY(!local.ok());
        QVERIFY2(local.error().contains(QLatin1String("services[0].health[0].internal: only for an "
                                                      "engine reached over SSH")),
                 qPrintable(local.error()));
        const auto tls = parse(env("ssh://deploy@example.com", "https://127.0.0.1:8443/readyz"));
        QVERIFY(!tls.ok() && tls.error().contains(QLatin1String("plain http://")));
    }

    // docker.identityFile: the key for an ssh:// host, resolved against the
    // file's folder (or ~/), a file that must be there; nothing else takes one.
    void identityFileIsForAnSshHost()
    {
        QFile key(m_dir.filePath(QStringLiteral("deploy_key")));
        QVERIFY(key.open(QIODevice::WriteOnly));
        key.close();
        const auto env = [](const char *host, const char *identity) {
            const QByteArray text =
                QByteArray("{'version': 1, 'environments': [{'name': 's', 'kind': 'compose', "
                           "'docker': {'host': '") +
                host + "', 'identityFile': '" + identity +
                "'}, 'compose': {'files': ['compose.yaml'], 'project': 'p'}}]}";
            return jsonQuotes(text.constData());
        };
        const auto ok = parse(env("ssh://deploy@example.com", "deploy_key"));
        QVERIFY2(ok.ok(), qPrintable(ok ? QString() : ok.error()));
        QCOMPARE(ok->environments.first().sshIdentityFile, key.fileName());
        const auto missing = parse(env("ssh://deploy@example.com", "nope_key"));
        QVERIFY(!missing.ok());
        QVERIFY2(missing.error().contains(QLatin1String("docker.identityFile: ")) &&
                     missing.error().contains(QLatin1String("nope_key does not exist")),
                 qPrintable(missing.error()));
        const auto tcp = parse(env("tcp://127.0.0.1:2375", "deploy_key"));
        QVERIFY(!tcp.ok() &&
                tcp.error().contains(QLatin1String("only for an engine reached over SSH")));
        // The document keeps it as written, and a form's edit goes back into it.
        EnvironmentDocument doc(env("ssh://deploy@example.com", "deploy_key"));
        EnvironmentFields f = doc.fields(0);
        QCOMPARE(f.identityFile, QStringLiteral("deploy_key"));
        f.identityFile = QStringLiteral("~/.ssh/id_staging");
        doc.setFields(0, f);
        QVERIFY(doc.text().contains("\"identityFile\": \"~/.ssh/id_staging\""));
    }

    // A Docker context is its endpoint, read from the context store, so an
    // ssh:// one takes the SSH connection like a docker.host does.
    void dockerContextIsItsEndpoint()
    {
        QTemporaryDir config;
        QVERIFY(config.isValid());
        const QString id = QString::fromLatin1(
            QCryptographicHash::hash("staging-ctx", QCryptographicHash::Sha256).toHex());
        QVERIFY(QDir().mkpath(config.filePath(QStringLiteral("contexts/meta/") + id)));
        QFile meta(config.filePath(QStringLiteral("contexts/meta/%1/meta.json").arg(id)));
        QVERIFY(meta.open(QIODevice::WriteOnly));
        meta.write(jsonQuotes("{'Name': 'staging-ctx', 'Metadata': {}, 'Endpoints': {'docker': "
                              "{'Host': 'ssh://deploy@staging.example.com:2222', "
                              "'SkipTLSVerify': false}}}"));
        meta.close();
        qputenv("DOCKER_CONFIG", config.path().toUtf8());
        QCOMPARE(dockerContextHost(QStringLiteral("staging-ctx")),
                 QStringLiteral("ssh://deploy@staging.example.com:2222"));
        QCOMPARE(dockerContextHost(QStringLiteral("nope")), QString());
        const auto set = parse(
            jsonQuotes("{'version': 1, 'environments': [{'name': 's', 'kind': 'compose', "
                       "'docker': {'context': 'staging-ctx'}, "
                       "'compose': {'files': ['compose.yaml'], 'project': 'p'}}, "
                       "{'name': 'u', 'kind': 'compose', 'docker': {'context': 'unknown-ctx'}, "
                       "'compose': {'files': ['compose.yaml'], 'project': 'p'}}]}"));
        qunsetenv("DOCKER_CONFIG");
        QVERIFY2(set.ok(), qPrintable(set ? QString() : set.error()));
        const Environment *s = set->find(QStringLiteral("s"));
        QCOMPARE(s->dockerHost, QStringLiteral("ssh://deploy@staging.example.com:2222"));
        QVERIFY(s->dockerContext.isEmpty());
        QVERIFY(s->isRemote());
        // Not in the store: left to docker, which names it.
        QCOMPARE(set->find(QStringLiteral("u"))->dockerContext, QStringLiteral("unknown-ctx"));
    }

    void fileProblemsStillFailTheLoad()
    {
        for (const QByteArray &json : { QByteArray(R"({"version": 1, "environments": [
                    {"name": "a", "kind": "native", "processes": [{"name": "p", "program": "x"}]},
                    {"name": "a", "kind": "native", "processes": [{"name": "p", "program": "x"}]}]})"),
                                        QByteArray(R"({"version": 2, "environments": [
                    {"name": "a", "kind": "native", "processes": [{"name": "p", "program": "x"}]}]})"),
                                        QByteArray(R"({"version": 1, "environments": [
                    {"name": "Bad Name", "kind": "native"}]})"),
                                        QByteArray("{not json") }) {
            QFile file(m_dir.filePath(QStringLiteral("broken.json")));
            QVERIFY(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
            file.write(json);
            file.close();
            QVERIFY2(!loadEnvironments(file.fileName()).ok(), json.constData());
        }
    }

    // The built-in environments run the stack of a folder: the one chosen
    // (remembered), else this build's checkout.
    void stackFolderChosenAndRemembered()
    {
        QCOMPARE(stackFolder().from, QStringLiteral("checkout")); // the tests run in one
        QTemporaryDir stack;
        QVERIFY(stack.isValid());
        // Not a stack: refused, saying what is missing, and nothing remembered.
        const Outcome refused = setStackFolder(stack.path());
        QVERIFY(!refused.ok());
        QVERIFY2(refused.error().contains(QLatin1String("compose.yaml or .env.example")),
                 qPrintable(refused.error()));
        QVERIFY(!setStackFolder(stack.filePath(QStringLiteral("nope"))).ok());
        QCOMPARE(stackFolder().from, QStringLiteral("checkout"));
        for (const char *name : { "compose.yaml", "compose.build.yaml", ".env.example" }) {
            QFile f(stack.filePath(QLatin1String(name)));
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("services: {}\n");
        }
        const Outcome chosen = setStackFolder(stack.path());
        QVERIFY2(chosen.ok(), qPrintable(chosen ? QString() : chosen.error()));
        QCOMPARE(stackFolder().path, stack.path());
        QCOMPARE(stackFolder().from, QStringLiteral("chosen"));
        const auto set = loadEnvironments(defaultEnvironmentsResource());
        QVERIFY(set.ok());
        const Environment *compose = set->find(QStringLiteral("local-compose"));
        QVERIFY(compose);
        QCOMPARE(compose->stackDirectory(), stack.path());
        // Forgotten: the checkout again.
        QVERIFY(setStackFolder({}).ok());
        QCOMPARE(stackFolder().from, QStringLiteral("checkout"));
        // A chosen folder that went away is passed over.
        QVERIFY(setStackFolder(stack.path()).ok());
        QVERIFY(stack.remove());
        QCOMPARE(stackFolder().from, QStringLiteral("checkout"));
        QVERIFY(setStackFolder({}).ok());
    }

    void namesCheckedBeforeCommands()
    {
        QVERIFY(isValidServiceName(QStringLiteral("api")));
        QVERIFY(!isValidServiceName(QStringLiteral("api;rm")));
        QVERIFY(!isValidServiceName(QStringLiteral("--all")));
        QVERIFY(isValidProjectName(QStringLiteral("pilothouse")));
        QVERIFY(!isValidProjectName(QStringLiteral("Pilothouse")));
        QVERIFY(isValidImageTag(QStringLiteral("sha-0123abc")));
        QVERIFY(!isValidImageTag(QStringLiteral("-bad")));
        QVERIFY(!isValidImageTag(QString(129, QLatin1Char('a'))));
    }
};

QTEST_GUILESS_MAIN(TestEnvironment)
#include "tst_environment.moc"
