#include "swarm/stackfile.h"

#include "env/yaml.h"

#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonObject>
#include <QRegularExpression>

namespace pilothouse {

QString interpolate(const QString &text, const VariableLookup &lookup, QStringList *missing)
{
    static const QRegularExpression nameRe(QStringLiteral("^[A-Za-z_][A-Za-z0-9_]*"));
    QString out;
    out.reserve(text.size());
    for (qsizetype i = 0; i < text.size(); ++i) {
        const QChar c = text.at(i);
        if (c != QLatin1Char('$') || i + 1 >= text.size()) {
            out += c;
            continue;
        }
        const QChar next = text.at(i + 1);
        if (next == QLatin1Char('$')) {
            out += QLatin1Char('$');
            ++i;
            continue;
        }
        if (next != QLatin1Char('{')) {
            const auto m = nameRe.match(text.mid(i + 1));
            if (!m.hasMatch()) {
                out += c;
                continue;
            }
            out += lookup(m.captured()).value_or(QString());
            i += m.capturedLength();
            continue;
        }
        // ${...}: the closing brace of this expression (defaults may nest).
        qsizetype depth = 0;
        qsizetype end = -1;
        for (qsizetype j = i + 1; j < text.size(); ++j) {
            if (text.at(j) == QLatin1Char('{'))
                ++depth;
            else if (text.at(j) == QLatin1Char('}') && --depth == 0) {
                end = j;
                break;
            }
        }
        if (end < 0) {
            out += text.mid(i);
            break;
        }
        const QString body = text.mid(i + 2, end - i - 2);
        i = end;
        const auto m = nameRe.match(body);
        const QString name = m.captured();
        const QString rest = body.mid(name.size());
        const std::optional<QString> value = name.isEmpty() ? std::nullopt : lookup(name);
        const bool colon = rest.startsWith(QLatin1Char(':'));
        const QString op = rest.mid(colon ? 1 : 0, 1);
        const QString arg = interpolate(rest.mid(colon ? 2 : 1), lookup, missing);
        const bool unset = !value || (colon && value->isEmpty());
        if (op == QLatin1String("-")) {
            out += unset ? arg : *value;
        } else if (op == QLatin1String("?")) {
            if (unset && missing)
                *missing << QStringLiteral("%1: %2").arg(
                    name, arg.isEmpty() ? QStringLiteral("required") : arg);
            out += value.value_or(QString());
        } else if (op == QLatin1String("+")) {
            out += unset ? QString() : arg;
        } else {
            out += value.value_or(QString());
        }
    }
    return out;
}

namespace {

QJsonValue interpolateAll(const QJsonValue &v, const VariableLookup &lookup, QStringList *missing)
{
    if (v.isString())
        return interpolate(v.toString(), lookup, missing);
    if (v.isArray()) {
        QJsonArray out;
        for (const QJsonValue &item : v.toArray())
            out.append(interpolateAll(item, lookup, missing));
        return out;
    }
    if (v.isObject()) {
        QJsonObject out;
        const QJsonObject o = v.toObject();
        for (auto it = o.begin(); it != o.end(); ++it)
            out.insert(it.key(), interpolateAll(it.value(), lookup, missing));
        return out;
    }
    return v;
}

// "127.0.0.1:8000:8080" or "127.0.0.1::8080": a host address the stack
// deployer drops, publishing on every address instead.
bool shortPortHasHostIp(const QString &spec)
{
    const QStringList parts = spec.split(QLatin1Char(':'));
    return parts.size() == 3 && !parts.first().isEmpty();
}

} // namespace

Expected<StackFile> readStackFile(const QString &path, const VariableLookup &lookup)
{
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return Error { QStringLiteral("%1: cannot be read (%2)").arg(path, f.errorString()) };
    const auto yaml = parseYaml(f.readAll());
    if (!yaml)
        return Error { QStringLiteral("%1: not valid YAML: %2").arg(path, yaml.error()) };
    if (!yaml->isObject())
        return Error { QStringLiteral("%1: not a compose file (no mapping at the top)").arg(path) };
    QStringList missing;
    const QJsonObject root = interpolateAll(*yaml, lookup, &missing).toObject();

    StackFile file;
    file.path = path;
    const QString name = QFileInfo(path).fileName();
    const auto problem = [&file, &name](const QString &key, const QString &what) {
        file.problems << QStringLiteral("%1: %2: %3").arg(name, key, what);
    };
    file.missingVariables = missing;

    const QJsonValue version = root.value(QStringLiteral("version"));
    file.version = version.isDouble() ? QString::number(version.toDouble()) : version.toString();
    if (file.version.isEmpty())
        problem(QStringLiteral("version"),
                QStringLiteral("missing; docker stack deploy of the 20.10 client refuses a file "
                               "without one: add `version: \"3.8\"` at the top"));
    else if (!file.version.startsWith(QLatin1Char('3')))
        problem(QStringLiteral("version"),
                QStringLiteral("\"%1\" is not a 3.x format, the only one docker stack deploy "
                               "reads: use \"3.8\"")
                    .arg(file.version));

    const QJsonObject services = root.value(QStringLiteral("services")).toObject();
    if (services.isEmpty())
        problem(QStringLiteral("services"), QStringLiteral("none defined"));
    const QJsonObject secrets = root.value(QStringLiteral("secrets")).toObject();
    for (auto it = secrets.begin(); it != secrets.end(); ++it) {
        const QJsonObject s = it.value().toObject();
        StackSecret secret;
        secret.key = it.key();
        const QJsonValue external = s.value(QStringLiteral("external"));
        secret.external = external.toBool() || external.isObject();
        secret.name = s.value(QStringLiteral("name"))
                          .toString(external.toObject().value(QStringLiteral("name")).toString());
        if (secret.name.isEmpty())
            secret.name = secret.key;
        if (!secret.external && !s.contains(QStringLiteral("file")))
            problem(QStringLiteral("secrets.%1").arg(it.key()),
                    QStringLiteral("neither `external: true` nor a `file:`; the stack deployer "
                                   "needs one of them"));
        file.secrets << secret;
    }

    for (auto it = services.begin(); it != services.end(); ++it) {
        const QString key = QStringLiteral("services.%1").arg(it.key());
        const QJsonObject svc = it.value().toObject();
        file.services << it.key();
        if (svc.value(QStringLiteral("image")).toString().isEmpty())
            problem(key,
                    svc.contains(QStringLiteral("build"))
                        ? QStringLiteral("has only `build:`, and docker stack deploy builds "
                                         "nothing: give it an `image:` that the engine has or "
                                         "can pull (build and push it first)")
                        : QStringLiteral("has no `image:`"));
        const QJsonValue depends = svc.value(QStringLiteral("depends_on"));
        if (depends.isObject()) {
            const QJsonObject d = depends.toObject();
            for (auto dep = d.begin(); dep != d.end(); ++dep) {
                if (dep.value().toObject().contains(QStringLiteral("condition"))) {
                    problem(key + QStringLiteral(".depends_on"),
                            QStringLiteral("conditions (`condition: %1`) are refused by docker "
                                           "stack deploy: list the services instead "
                                           "(`depends_on: [%2]`) or drop it; a swarm starts "
                                           "services in any order, so the service must wait "
                                           "for what it needs itself")
                                .arg(dep.value()
                                         .toObject()
                                         .value(QStringLiteral("condition"))
                                         .toString(),
                                     dep.key()));
                    break;
                }
            }
        }
        const QJsonArray ports = svc.value(QStringLiteral("ports")).toArray();
        for (const QJsonValue &p : ports) {
            if (p.isString() && shortPortHasHostIp(p.toString()))
                problem(key + QStringLiteral(".ports"),
                        QStringLiteral("\"%1\" names a host address, which docker stack deploy "
                                       "drops (it would publish on every address): publish "
                                       "without one, in long form with `mode: host` where "
                                       "ingress does not route, and restrict it with a firewall")
                            .arg(p.toString()));
            else if (p.isObject() && p.toObject().contains(QStringLiteral("host_ip")))
                problem(key + QStringLiteral(".ports"),
                        QStringLiteral("`host_ip` is dropped by docker stack deploy (it would "
                                       "publish on every address): remove it and restrict the "
                                       "port with a firewall"));
        }
        const QJsonArray used = svc.value(QStringLiteral("secrets")).toArray();
        for (const QJsonValue &u : used) {
            const QString source = u.isString()
                ? u.toString()
                : u.toObject().value(QStringLiteral("source")).toString();
            if (!secrets.contains(source))
                problem(key + QStringLiteral(".secrets"),
                        QStringLiteral("\"%1\" is not declared under the top-level `secrets:`")
                            .arg(source));
        }
        for (const char *ignored : { "security_opt", "container_name", "restart", "links",
                                     "network_mode", "devices", "userns_mode" }) {
            if (svc.contains(QLatin1String(ignored)))
                file.warnings << QStringLiteral("%1: %2.%3: ignored by docker stack deploy%4")
                                     .arg(name, key, QLatin1String(ignored),
                                          qstrcmp(ignored, "restart") == 0
                                              ? QStringLiteral(" (use deploy.restart_policy)")
                                              : QString());
        }
    }
    return file;
}

} // namespace pilothouse
