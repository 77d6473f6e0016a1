// Swarm's file side, without an engine: YAML as the panel reads it, compose
// interpolation, what a stack file must change before `docker stack deploy`,
// the sentences for an engine that cannot run a stack, and the database's
// facts as psql prints them in its container.
#include "db/databaseprobe.h"
#include "env/yaml.h"
#include "swarm/stackfile.h"
#include "swarm/swarmwatcher.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

using namespace pilothouse;

class TestStackFile final : public QObject
{
    Q_OBJECT

    QTemporaryDir m_dir;

    QString write(const char *name, const QByteArray &text)
    {
        const QString path = m_dir.filePath(QLatin1String(name));
        QFile f(path);
        if (f.open(QIODevice::WriteOnly))
            f.write(text);
        return path;
    }

    static VariableLookup vars(const QMap<QString, QString> &map)
    {
        return [map](const QString &name) -> std::optional<QString> {
            const auto it = map.constFind(name);
            return it == map.cend() ? std::nullopt : std::optional<QString>(*it);
        };
    }

private slots:
    void yamlScalarsAnchorsAndMerges()
    {
        const auto v = parseYaml("x: &base\n"
                                 "  a: 1\n"
                                 "  b: two\n"
                                 "  c: true\n"
                                 "  d: ~\n"
                                 "  e: \"3\"\n"
                                 "  f: 0400\n"
                                 "y:\n"
                                 "  <<: *base\n"
                                 "  b: own\n"
                                 "z: [*base, 2.5]\n");
        QVERIFY2(v.ok(), qPrintable(v ? QString() : v.error()));
        const QJsonObject o = v->toObject();
        const QJsonObject x = o.value(u"x").toObject();
        QCOMPARE(x.value(u"a").toInteger(), 1);
        QCOMPARE(x.value(u"b").toString(), QStringLiteral("two"));
        QCOMPARE(x.value(u"c").toBool(), true);
        QVERIFY(x.value(u"d").isNull());
        QCOMPARE(x.value(u"e").toString(), QStringLiteral("3")); // quoted stays a string
        // The merge: the base's keys, the mapping's own winning.
        const QJsonObject y = o.value(u"y").toObject();
        QCOMPARE(y.value(u"a").toInteger(), 1);
        QCOMPARE(y.value(u"b").toString(), QStringLiteral("own"));
        QCOMPARE(o.value(u"z").toArray().size(), 2);
        QCOMPARE(o.value(u"z").toArray().at(1).toDouble(), 2.5);
    }

    void yamlErrorsNameTheLine()
    {
        const auto bad = parseYaml("a: 1\nb: [unclosed\nc: 2\n");
        QVERIFY(!bad.ok());
        QVERIFY2(bad.error().startsWith(QLatin1String("line ")), qPrintable(bad.error()));
        // Aliases that multiply (billion laughs) are refused, not expanded.
        QByteArray bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
        char prev = 'a';
        for (char c = 'b'; c <= 'j'; ++c) {
            bomb += QByteArray(1, c) + ": &" + QByteArray(1, c) + " [";
            for (int i = 0; i < 10; ++i)
                bomb += (i ? ", *" : "*") + QByteArray(1, prev);
            bomb += "]\n";
            prev = c;
        }
        const auto exploded = parseYaml(bomb);
        QVERIFY(!exploded.ok());
        QVERIFY2(exploded.error().contains(QLatin1String("aliased")), qPrintable(exploded.error()));
    }

    void interpolation()
    {
        QStringList missing;
        const auto lookup = vars({ { QStringLiteral("SET"), QStringLiteral("v") },
                                   { QStringLiteral("EMPTY"), QString() } });
        QCOMPARE(interpolate(QStringLiteral("$SET-${SET}-$$SET"), lookup, &missing),
                 QStringLiteral("v-v-$SET"));
        QCOMPARE(
            interpolate(QStringLiteral("${UNSET:-d}/${EMPTY:-d}/${EMPTY-d}"), lookup, &missing),
            QStringLiteral("d/d/"));
        QCOMPARE(interpolate(QStringLiteral("${SET:+yes}${UNSET:+no}"), lookup, &missing),
                 QStringLiteral("yes"));
        QCOMPARE(interpolate(QStringLiteral("${UNSET:-${SET}x}"), lookup, &missing),
                 QStringLiteral("vx"));
        QVERIFY(missing.isEmpty());
        QCOMPARE(interpolate(QStringLiteral("${NEED:?set NEED in .env}"), lookup, &missing),
                 QString());
        QCOMPARE(missing, QStringList { QStringLiteral("NEED: set NEED in .env") });
    }

    // What the stack deployer refuses or silently drops, each with the fix;
    // the secrets it needs; what it ignores harmlessly, as warnings.
    void problemsOfAComposeFile()
    {
        const QString path = write("compose.yaml",
                                   "services:\n"
                                   "  web:\n"
                                   "    build: .\n"
                                   "    restart: always\n"
                                   "    security_opt: [no-new-privileges:true]\n"
                                   "    depends_on:\n"
                                   "      db: {condition: service_healthy}\n"
                                   "    ports: [\"127.0.0.1:8080:80\", \"9000:90\"]\n"
                                   "    secrets: [token, undeclared]\n"
                                   "  db:\n"
                                   "    image: postgres:${PG:?set PG}\n"
                                   "secrets:\n"
                                   "  token: {external: true, name: \"${STACK}_token\"}\n");
        const auto file =
            readStackFile(path, vars({ { QStringLiteral("STACK"), QStringLiteral("s") } }));
        QVERIFY(file.ok());
        const QString all = file->problems.join(u'\n');
        QCOMPARE(file->problems.size(), 5);
        for (const char *what :
             { "compose.yaml: version: missing", "add `version: \"3.8\"`",
               "services.web: has only `build:`",
               "services.web.depends_on: conditions (`condition: "
               "service_healthy`)",
               "`depends_on: [db]`", "\"127.0.0.1:8080:80\" names a host address",
               "\"undeclared\" is not declared" })
            QVERIFY2(all.contains(QLatin1String(what)), qPrintable(all));
        QVERIFY2(!all.contains(QLatin1String("9000:90")), qPrintable(all));
        QCOMPARE(file->missingVariables, QStringList { QStringLiteral("PG: set PG") });
        QCOMPARE(file->secrets.size(), 1);
        QCOMPARE(file->secrets.first().name, QStringLiteral("s_token"));
        QVERIFY(file->secrets.first().external);
        QCOMPARE(file->services, (QStringList { QStringLiteral("db"), QStringLiteral("web") }));
        const QString warnings = file->warnings.join(u'\n');
        QVERIFY2(warnings.contains(QLatin1String("restart: ignored by docker stack deploy (use "
                                                 "deploy.restart_policy)")) &&
                     warnings.contains(QLatin1String("security_opt")),
                 qPrintable(warnings));
    }

    void aCompatibleFileHasNoProblems()
    {
        const QString path = write("stack.yaml",
                                   "version: \"3.8\"\n"
                                   "services:\n"
                                   "  web:\n"
                                   "    image: nginx\n"
                                   "    depends_on: [db]\n"
                                   "    ports:\n"
                                   "      - {target: 80, published: 8080, mode: host}\n"
                                   "  db: {image: postgres}\n");
        const auto file = readStackFile(path, vars({}));
        QVERIFY(file.ok());
        QVERIFY2(file->problems.isEmpty(), qPrintable(file->problems.join(u'\n')));
        QCOMPARE(file->version, QStringLiteral("3.8"));
        const auto unreadable =
            readStackFile(m_dir.filePath(QStringLiteral("nope.yaml")), vars({}));
        QVERIFY(!unreadable.ok());
        QVERIFY(unreadable.error().contains(QLatin1String("cannot be read")));
    }

    void enginesThatCannotRunAStack()
    {
        QVERIFY(swarmProblem(QStringLiteral("active"), true).isEmpty());
        QVERIFY(swarmProblem(QStringLiteral("inactive"), false)
                    .contains(QLatin1String("docker swarm init --advertise-addr 127.0.0.1")));
        QVERIFY(swarmProblem(QStringLiteral("active"), false).contains(QLatin1String("worker")));
        QVERIFY(swarmProblem(QStringLiteral("locked"), false)
                    .contains(QLatin1String("docker swarm unlock")));
    }

    void replicasText()
    {
        SwarmService s;
        s.running = 1;
        s.desired = 2;
        QCOMPARE(s.replicasText(), QStringLiteral("1/2"));
    }

    // psql -A -t in the database's container, with \timing: the facts.
    void factsFromPsql()
    {
        const DatabaseFacts f = DatabaseProbe::factsFromPsql(
            QStringLiteral("Timing is on.\n1\nTime: 0.412 ms\n"
                           "{\"version\" : \"15.8\", \"size\" : 7869231, \"used\" : 3, \"max\" : "
                           "100, \"tables\" : [{\"name\":\"public.jobs\",\"bytes\":65536,"
                           "\"rows\":12}]}\nTime: 3.1 ms\nmigration=4\nTime: 0.2 ms\n"));
        QVERIFY(f.reachable());
        QCOMPARE(f.serverVersion, QStringLiteral("15.8"));
        QCOMPARE(f.sizeBytes, 7869231);
        QCOMPARE(f.connectionsUsed, 3);
        QCOMPARE(f.connectionsMax, 100);
        QCOMPARE(f.migrationVersion, 4);
        QCOMPARE(f.latencyMs, 0.412);
        QCOMPARE(f.largestTables.size(), 1);
        QCOMPARE(f.largestTables.first().name, QStringLiteral("public.jobs"));
        // No schema_migrations: its query failed, the rest stands.
        const DatabaseFacts none = DatabaseProbe::factsFromPsql(
            QStringLiteral("1\n{\"version\" : \"15.8\", \"size\" : 1, \"used\" : 1, \"max\" : 100, "
                           "\"tables\" : []}\n"));
        QVERIFY(none.reachable());
        QCOMPARE(none.migrationVersion, -1);
        QVERIFY(!DatabaseProbe::factsFromPsql(QString()).reachable());
    }
};

QTEST_GUILESS_MAIN(TestStackFile)
#include "tst_stackfile.moc"
