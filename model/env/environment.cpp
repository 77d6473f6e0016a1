// Environments and their file. Over 500 lines because one validator walks
// the whole file, section by section, so that every problem is reported at
// once with its field path (what the settings form shows next to each field).
#include "env/environment.h"

#include "swarm/stackfile.h"

#include <QCoreApplication>
#include <QCryptographicHash>
#include <QFile>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcessEnvironment>
#include <QRegularExpression>
#include <QSaveFile>
#include <QSet>
#include <QSettings>
#include <QStandardPaths>
#include <QUrlQuery>
#include <algorithm>
#include <cmath>

#ifndef PILOTHOUSE_SOURCE_DIR
#define PILOTHOUSE_SOURCE_DIR ""
#endif

namespace pilothouse {

QString toString(EnvironmentKind kind)
{
    switch (kind) {
    case EnvironmentKind::Native:
        return QStringLiteral("native");
    case EnvironmentKind::Compose:
        return QStringLiteral("compose");
    case EnvironmentKind::Swarm:
        return QStringLiteral("swarm");
    }
    return {};
}

namespace {

// The libpq options a database.dsn may carry, each with the values it may
// take. Anything else is refused: option values end up in a libpq conninfo
// string, where a space or '=' would start another option.
struct DsnOption
{
    const char *name;
    QRegularExpression values;
    const char *expected;
};

const QList<DsnOption> &dsnOptions()
{
    static const QList<DsnOption> options {
        { "sslmode",
          QRegularExpression(
              QStringLiteral("^(disable|allow|prefer|require|verify-ca|verify-full)$")),
          "disable, allow, prefer, require, verify-ca or verify-full (verify-full for a remote "
          "database)" },
        { "sslrootcert", QRegularExpression(QStringLiteral("^(/[A-Za-z0-9_.+@-]+)+$|^system$")),
          "an absolute path without spaces, or system" },
        { "target_session_attrs",
          QRegularExpression(
              QStringLiteral("^(any|read-write|read-only|primary|standby|prefer-standby)$")),
          "any, read-write, read-only, primary, standby or prefer-standby" },
        { "application_name", QRegularExpression(QStringLiteral("^[A-Za-z0-9_.-]{1,63}$")),
          "letters, digits, '_', '.', '-' (at most 63)" },
    };
    return options;
}

const DsnOption *dsnOption(const QString &name)
{
    for (const DsnOption &o : dsnOptions()) {
        if (name == QLatin1String(o.name))
            return &o;
    }
    return nullptr;
}

} // namespace

QList<std::pair<QString, QString>> DatabaseTarget::options() const
{
    QList<std::pair<QString, QString>> out;
    for (const auto &[key, value] : QUrlQuery(dsn).queryItems(QUrl::FullyDecoded)) {
        const DsnOption *o = dsnOption(key);
        if (o && o->values.match(value).hasMatch())
            out.append({ key, value });
    }
    return out;
}

QString DatabaseTarget::displayDsn() const
{
    // Only the allowed options are kept (validation refused any other).
    QUrl shown = dsn;
    QUrlQuery kept;
    for (const auto &[key, value] : options())
        kept.addQueryItem(key, value);
    shown.setQuery(kept);
    return shown.toString(QUrl::RemovePassword);
}

QString Environment::stackDirectory() const
{
    return composeFiles.isEmpty() ? QString() : QFileInfo(composeFiles.first()).absolutePath();
}

bool Environment::isRemote() const
{
    if (!dockerHost.isEmpty())
        return !dockerHost.startsWith(QLatin1String("unix://"));
    return !dockerContext.isEmpty() && dockerContext != QLatin1String("default");
}

const Environment *EnvironmentSet::find(const QString &name) const
{
    for (const Environment &e : environments) {
        if (e.name == name)
            return &e;
    }
    return nullptr;
}

const InvalidEnvironment *EnvironmentSet::findInvalid(const QString &name) const
{
    for (const InvalidEnvironment &e : invalid) {
        if (e.name == name)
            return &e;
    }
    return nullptr;
}

QStringList EnvironmentSet::names() const
{
    QStringList out;
    for (const Environment &e : environments)
        out << e.name;
    return out;
}

QString userEnvironmentsPath()
{
    return QStandardPaths::writableLocation(QStandardPaths::AppConfigLocation) +
        QStringLiteral("/environments.json");
}

QString defaultEnvironmentsResource()
{
    return QStringLiteral(":/pilothouse/environments.json");
}

QString resolveEnvironmentsPath(const QString &explicitPath)
{
    if (!explicitPath.isEmpty())
        return explicitPath;
    const QString user = userEnvironmentsPath();
    if (QFileInfo::exists(user))
        return user;
    return defaultEnvironmentsResource();
}

namespace {
Expected<EnvironmentSet> parseLenient(const QByteArray &json, const QString &source,
                                      const QDir &baseDir, bool stackMissing);
}

Expected<EnvironmentSet> loadEnvironments(const QString &path)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        return Error { QStringLiteral("%1: cannot read the environments file: %2")
                           .arg(path, file.errorString()) };
    }
    QDir base = QFileInfo(path).absoluteDir();
    bool stackMissing = false;
    if (path.startsWith(QLatin1Char(':'))) {
        // The built-in defaults describe this project's stack folder.
        const StackFolder stack = stackFolder();
        stackMissing = stack.path.isEmpty();
        base = QDir(stackMissing ? QDir::currentPath() : stack.path);
    }
    return parseLenient(file.readAll(), path, base, stackMissing);
}

bool isStackFolder(const QString &path)
{
    const QDir d(path);
    return !path.isEmpty() && QFileInfo(d.filePath(QStringLiteral("compose.yaml"))).isFile() &&
        QFileInfo(d.filePath(QStringLiteral(".env.example"))).isFile();
}

namespace {
const QString stackFolderKey = QStringLiteral("stack/folder");
}

StackFolder stackFolder()
{
    const QString chosen = QSettings().value(stackFolderKey).toString();
    if (isStackFolder(chosen))
        return { QDir(chosen).absolutePath(), QStringLiteral("chosen") };
    const QString source = QStringLiteral(PILOTHOUSE_SOURCE_DIR);
    if (isStackFolder(source))
        return { source, QStringLiteral("checkout") };
    if (isStackFolder(QDir::currentPath()))
        return { QDir::currentPath(), QStringLiteral("current folder") };
    return {};
}

Outcome setStackFolder(const QString &path)
{
    QSettings settings;
    if (path.isEmpty()) {
        settings.remove(stackFolderKey);
        settings.sync();
        return success();
    }
    const QDir d(path);
    if (!d.exists())
        return Error { QStringLiteral("%1 does not exist; give the folder of a Pilothouse "
                                      "checkout (the one with compose.yaml)")
                           .arg(path) };
    QStringList missing;
    for (const char *name : { "compose.yaml", ".env.example" }) {
        if (!QFileInfo(d.filePath(QLatin1String(name))).isFile())
            missing << QLatin1String(name);
    }
    if (!missing.isEmpty())
        return Error { QStringLiteral("%1 has no %2; give the folder of a Pilothouse checkout "
                                      "(git clone it, then choose its top folder)")
                           .arg(d.absolutePath(), missing.join(QStringLiteral(" or "))) };
    settings.setValue(stackFolderKey, d.absolutePath());
    settings.sync();
    // Read back from the file: status() may report an error left from reading.
    if (QSettings().value(stackFolderKey).toString() != d.absolutePath())
        return Error {
            QStringLiteral("%1: the choice could not be saved").arg(settings.fileName())
        };
    return success();
}

QString dockerContextHost(const QString &name)
{
    // The Docker CLI's context store: <config>/contexts/meta/<sha256 of the
    // name>/meta.json, {"Name": ..., "Endpoints": {"docker": {"Host": ...}}}.
    QString config = qEnvironmentVariable("DOCKER_CONFIG");
    if (config.isEmpty())
        config = QDir::homePath() + QStringLiteral("/.docker");
    const QString id = QString::fromLatin1(
        QCryptographicHash::hash(name.toUtf8(), QCryptographicHash::Sha256).toHex());
    QFile meta(QStringLiteral("%1/contexts/meta/%2/meta.json").arg(config, id));
    if (!meta.open(QIODevice::ReadOnly) || meta.size() > 1 << 20)
        return {};
    const QJsonObject o = QJsonDocument::fromJson(meta.readAll()).object();
    if (o.value(QStringLiteral("Name")).toString() != name)
        return {};
    return o.value(QStringLiteral("Endpoints"))
        .toObject()
        .value(QStringLiteral("docker"))
        .toObject()
        .value(QStringLiteral("Host"))
        .toString();
}

bool isValidEnvironmentName(const QString &name)
{
    static const QRegularExpression re(QStringLiteral("^[a-z0-9][a-z0-9_-]{0,62}$"));
    return re.match(name).hasMatch();
}

bool isValidProjectName(const QString &name)
{
    static const QRegularExpression re(QStringLiteral("^[a-z0-9][a-z0-9_-]{0,62}$"));
    return re.match(name).hasMatch();
}

bool isValidServiceName(const QString &name)
{
    static const QRegularExpression re(QStringLiteral("^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"));
    return re.match(name).hasMatch();
}

bool isValidImageTag(const QString &tag)
{
    static const QRegularExpression re(QStringLiteral("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"));
    return re.match(tag).hasMatch();
}

namespace {

// "scheme://user:secret@host/..." -> "scheme://***@host/...": values are echoed
// in messages, and a mistyped URL may still carry a password.
QString redactUserInfo(const QString &text)
{
    const qsizetype scheme = text.indexOf(QLatin1String("://"));
    const qsizetype from = scheme < 0 ? 0 : scheme + 3;
    qsizetype end = text.indexOf(QLatin1Char('/'), from);
    if (end < 0)
        end = text.size();
    const qsizetype at = text.lastIndexOf(QLatin1Char('@'), end - 1);
    if (at < from)
        return text;
    return text.left(from) + QStringLiteral("***") + text.mid(at);
}

bool isValidRepository(const QString &repo)
{
    // registry host[:port]/path components, lowercase, no tag or digest
    static const QRegularExpression re(QStringLiteral(
        "^([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$"));
    return re.match(repo).hasMatch();
}

// Collects every problem with where it is, so one run shows them all.
class Validator
{
public:
    Validator(QString source, QDir base)
        : m_source(std::move(source))
        , m_base(std::move(base))
    {
        const QString data = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
        m_vars.insert(QStringLiteral("DATA_DIR"), data);
        m_vars.insert(QStringLiteral("CONFIG_DIR"), m_base.absolutePath());
    }

    QStringList errors;
    QList<EnvironmentIssue> issues;
    QString environment; // current environment, for messages

    void fail(const QString &field, const QString &message)
    {
        issues << EnvironmentIssue { environment, field, message };
        QString where = m_source;
        if (!environment.isEmpty())
            where += QStringLiteral(": environment \"%1\"").arg(environment);
        if (!field.isEmpty())
            where += QStringLiteral(": %1").arg(field);
        errors << where + QStringLiteral(": ") + message;
    }

    // Unknown keys are mistakes (a typo silently ignored is worse than an error).
    void onlyKeys(const QJsonObject &o, const QString &field, const QStringList &allowed)
    {
        for (auto it = o.begin(); it != o.end(); ++it) {
            if (!allowed.contains(it.key())) {
                fail(field.isEmpty() ? it.key() : field + QLatin1Char('.') + it.key(),
                     QStringLiteral("unknown key; expected one of: %1").arg(allowed.join(u", ")));
            }
        }
    }

    std::optional<QString> string(const QJsonObject &o, const QString &key, const QString &field,
                                  bool required)
    {
        const QJsonValue v = o.value(key);
        if (v.isUndefined() || v.isNull()) {
            if (required)
                fail(field, QStringLiteral("missing; it is required"));
            return std::nullopt;
        }
        if (!v.isString()) {
            fail(field, QStringLiteral("expected a string"));
            return std::nullopt;
        }
        return expand(v.toString(), field);
    }

    std::optional<double> number(const QJsonObject &o, const QString &key, const QString &field,
                                 double min, double max)
    {
        const QJsonValue v = o.value(key);
        if (v.isUndefined())
            return std::nullopt;
        if (!v.isDouble() || v.toDouble() < min || v.toDouble() > max) {
            fail(field, QStringLiteral("expected a number from %1 to %2").arg(min).arg(max));
            return std::nullopt;
        }
        return v.toDouble();
    }

    QStringList stringList(const QJsonObject &o, const QString &key, const QString &field)
    {
        QStringList out;
        const QJsonValue v = o.value(key);
        if (v.isUndefined())
            return out;
        if (!v.isArray()) {
            fail(field, QStringLiteral("expected a list of strings"));
            return out;
        }
        const QJsonArray a = v.toArray();
        for (qsizetype i = 0; i < a.size(); ++i) {
            const QString f = QStringLiteral("%1[%2]").arg(field).arg(i);
            if (!a.at(i).isString()) {
                fail(f, QStringLiteral("expected a string"));
                continue;
            }
            out << expand(a.at(i).toString(), f);
        }
        return out;
    }

    // ${NAME}: DATA_DIR (the panel's data folder), CONFIG_DIR (this file's
    // folder), or a variable of the panel's environment. ~/ is the home folder.
    QString expand(const QString &text, const QString &field)
    {
        static const QRegularExpression var(QStringLiteral("\\$\\{([A-Za-z_][A-Za-z0-9_]*)\\}"));
        QString out;
        qsizetype last = 0;
        auto it = var.globalMatch(text);
        const QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        while (it.hasNext()) {
            const auto m = it.next();
            out += text.mid(last, m.capturedStart() - last);
            const QString name = m.captured(1);
            if (m_vars.contains(name))
                out += m_vars.value(name);
            else if (env.contains(name))
                out += env.value(name);
            else
                fail(field,
                     QStringLiteral("${%1} is not set (known: DATA_DIR, CONFIG_DIR, or a "
                                    "variable of the environment)")
                         .arg(name));
            last = m.capturedEnd();
        }
        out += text.mid(last);
        if (out.startsWith(QLatin1String("~/")))
            out = QDir::homePath() + out.mid(1);
        return out;
    }

    QString path(const QString &p) const { return QDir::cleanPath(m_base.absoluteFilePath(p)); }

    const QDir &base() const { return m_base; }

private:
    QString m_source;
    QDir m_base;
    QMap<QString, QString> m_vars;
};

void parseEndpoint(Validator &v, const QJsonValue &value, const QString &field,
                   QList<HealthEndpoint> &out)
{
    if (!value.isObject()) {
        v.fail(field,
               QStringLiteral("expected an object like {\"url\": \"http://host:port/readyz\"}"));
        return;
    }
    const QJsonObject o = value.toObject();
    v.onlyKeys(o, field,
               { QStringLiteral("url"), QStringLiteral("intervalSeconds"),
                 QStringLiteral("timeoutSeconds"), QStringLiteral("internal") });
    HealthEndpoint e;
    if (o.contains(QStringLiteral("internal"))) {
        if (!o.value(QStringLiteral("internal")).isBool())
            v.fail(field + QStringLiteral(".internal"), QStringLiteral("expected true or false"));
        e.internal = o.value(QStringLiteral("internal")).toBool();
    }
    if (const auto url = v.string(o, QStringLiteral("url"), field + QStringLiteral(".url"), true)) {
        e.url = QUrl(*url, QUrl::StrictMode);
        const QString scheme = e.url.scheme();
        if (!e.url.isValid() ||
            (scheme != QLatin1String("http") && scheme != QLatin1String("https")) ||
            e.url.host().isEmpty()) {
            v.fail(field + QStringLiteral(".url"),
                   QStringLiteral("expected an http:// or https:// URL with a host, got \"%1\"")
                       .arg(redactUserInfo(*url)));
        } else if (!e.url.userInfo().isEmpty()) {
            v.fail(field + QStringLiteral(".url"), QStringLiteral("must not carry credentials"));
        } else if (e.internal && scheme != QLatin1String("http")) {
            v.fail(field + QStringLiteral(".url"),
                   QStringLiteral("an internal endpoint is plain http:// (the SSH connection "
                                  "already encrypts it)"));
        }
    }
    if (const auto s = v.number(o, QStringLiteral("intervalSeconds"),
                                field + QStringLiteral(".intervalSeconds"), 0.1, 3600))
        e.intervalMs = int(*s * 1000);
    if (const auto s = v.number(o, QStringLiteral("timeoutSeconds"),
                                field + QStringLiteral(".timeoutSeconds"), 0.1, 300))
        e.timeoutMs = int(*s * 1000);
    out << e;
}

void parseServices(Validator &v, const QJsonObject &o, Environment &env)
{
    const QJsonValue value = o.value(QStringLiteral("services"));
    if (value.isUndefined())
        return;
    if (!value.isArray()) {
        v.fail(QStringLiteral("services"), QStringLiteral("expected a list of services"));
        return;
    }
    const QJsonArray services = value.toArray();
    QSet<QString> seen;
    for (qsizetype i = 0; i < services.size(); ++i) {
        const QString field = QStringLiteral("services[%1]").arg(i);
        if (!services.at(i).isObject()) {
            v.fail(field, QStringLiteral("expected an object with a name and health endpoints"));
            continue;
        }
        const QJsonObject s = services.at(i).toObject();
        v.onlyKeys(s, field, { QStringLiteral("name"), QStringLiteral("health") });
        WatchedService ws;
        if (const auto name =
                v.string(s, QStringLiteral("name"), field + QStringLiteral(".name"), true)) {
            ws.name = *name;
            if (!isValidServiceName(ws.name))
                v.fail(field + QStringLiteral(".name"),
                       QStringLiteral("\"%1\" is not a valid service name (letters, digits, "
                                      "'_', '.', '-'; starting with a letter or digit)")
                           .arg(ws.name));
            else if (seen.contains(ws.name))
                v.fail(field + QStringLiteral(".name"),
                       QStringLiteral("\"%1\" is listed twice").arg(ws.name));
            seen.insert(ws.name);
        }
        const QJsonValue health = s.value(QStringLiteral("health"));
        if (!health.isUndefined()) {
            if (!health.isArray()) {
                v.fail(field + QStringLiteral(".health"),
                       QStringLiteral("expected a list of endpoints"));
            } else {
                const QJsonArray eps = health.toArray();
                for (qsizetype j = 0; j < eps.size(); ++j) {
                    const QString at = field + QStringLiteral(".health[%1]").arg(j);
                    parseEndpoint(v, eps.at(j), at, ws.endpoints);
                    if (!ws.endpoints.isEmpty() && ws.endpoints.last().internal &&
                        !env.dockerHost.startsWith(QLatin1String("ssh://")))
                        v.fail(at + QStringLiteral(".internal"),
                               QStringLiteral("only for an engine reached over SSH (docker.host "
                                              "ssh://user@host): the endpoint is reached "
                                              "through that connection"));
                }
            }
        }
        env.services << ws;
    }
}

// database.compose: {"service": "postgres", "user": "POSTGRES_USER",
// "password": "POSTGRES_PASSWORD", "database": "POSTGRES_DB", "port": 5432}
// (the variables' names; every key but service has that default).
void parseStackDatabase(Validator &v, const QJsonObject &d, Environment &env,
                        DatabaseTarget &target)
{
    static const QRegularExpression variable(QStringLiteral("^[A-Za-z_][A-Za-z0-9_]*$"));
    for (const char *other : { "dsn", "passwordEnv", "keychain" }) {
        if (d.contains(QLatin1String(other)))
            v.fail(QStringLiteral("database.") + QLatin1String(other),
                   QStringLiteral("not with database.compose: the stack's own variables give "
                                  "the user, password and database"));
    }
    if (env.kind == EnvironmentKind::Native)
        v.fail(QStringLiteral("database.compose"),
               QStringLiteral("a database in the stack needs a compose or swarm environment; "
                              "give database.dsn instead"));
    if (!d.value(QStringLiteral("compose")).isObject()) {
        v.fail(QStringLiteral("database.compose"),
               QStringLiteral("expected {\"service\": \"postgres\"}"));
        return;
    }
    const QJsonObject c = d.value(QStringLiteral("compose")).toObject();
    v.onlyKeys(c, QStringLiteral("database.compose"),
               { QStringLiteral("service"), QStringLiteral("user"), QStringLiteral("password"),
                 QStringLiteral("database"), QStringLiteral("port") });
    DatabaseTarget::InStack in;
    if (const auto service = v.string(c, QStringLiteral("service"),
                                      QStringLiteral("database.compose.service"), true)) {
        if (!isValidServiceName(*service))
            v.fail(QStringLiteral("database.compose.service"),
                   QStringLiteral("\"%1\" is not a valid service name").arg(*service));
        in.service = *service;
    }
    for (const auto &[key, slot] :
         { std::pair { QStringLiteral("user"), &in.userVariable },
           std::pair { QStringLiteral("password"), &in.passwordVariable },
           std::pair { QStringLiteral("database"), &in.databaseVariable } }) {
        const QString field = QStringLiteral("database.compose.") + key;
        if (const auto name = v.string(c, key, field, false)) {
            if (!variable.match(*name).hasMatch())
                v.fail(field,
                       QStringLiteral("expected the name of the stack's variable, got "
                                      "\"%1\"")
                           .arg(*name));
            *slot = *name;
        }
    }
    if (const auto port =
            v.number(c, QStringLiteral("port"), QStringLiteral("database.compose.port"), 1, 65535))
        in.port = int(*port);
    target.inStack = in;
    // What is shown until the stack answers; the address is the container's.
    target.dsn = QUrl(QStringLiteral("postgresql://%1:%2/").arg(in.service).arg(in.port));
    env.database = target;
}

void parseDatabase(Validator &v, const QJsonObject &o, Environment &env)
{
    const QJsonValue value = o.value(QStringLiteral("database"));
    if (value.isUndefined())
        return;
    if (!value.isObject()) {
        v.fail(QStringLiteral("database"), QStringLiteral("expected an object with a dsn"));
        return;
    }
    const QJsonObject d = value.toObject();
    v.onlyKeys(d, QStringLiteral("database"),
               { QStringLiteral("dsn"), QStringLiteral("passwordEnv"), QStringLiteral("keychain"),
                 QStringLiteral("compose") });
    DatabaseTarget target;
    if (d.contains(QStringLiteral("compose"))) {
        parseStackDatabase(v, d, env, target);
        return;
    }
    const auto dsn = v.string(d, QStringLiteral("dsn"), QStringLiteral("database.dsn"), true);
    if (!dsn)
        return;
    target.dsn = QUrl(*dsn, QUrl::StrictMode);
    const QString scheme = target.dsn.scheme();
    if (!target.dsn.isValid()) {
        v.fail(QStringLiteral("database.dsn"), QStringLiteral("not a valid URL"));
        return;
    }
    if (scheme == QLatin1String("sqlite")) {
        if (!target.dsn.path().startsWith(QLatin1Char('/')) || !target.dsn.host().isEmpty())
            v.fail(QStringLiteral("database.dsn"),
                   QStringLiteral("expected sqlite:///absolute/path.db"));
    } else if (scheme == QLatin1String("postgresql") || scheme == QLatin1String("postgres")) {
        target.dsn.setScheme(QStringLiteral("postgresql"));
        if (!target.dsn.password().isEmpty()) {
            v.fail(QStringLiteral("database.dsn"),
                   QStringLiteral("must not contain a password; put it in ~/.pgpass or in an "
                                  "environment variable named by database.passwordEnv"));
            target.dsn.setPassword({});
        }
        if (target.dsn.host().isEmpty() || target.dsn.userName().isEmpty() ||
            target.dsn.path().size() < 2)
            v.fail(QStringLiteral("database.dsn"),
                   QStringLiteral("expected postgresql://user@host:5432/dbname"));
        const QUrlQuery query(target.dsn);
        QStringList allowed;
        for (const DsnOption &known : dsnOptions())
            allowed << QLatin1String(known.name);
        for (const auto &[key, given] : query.queryItems(QUrl::FullyDecoded)) {
            const DsnOption *option = dsnOption(key);
            if (!option) {
                v.fail(QStringLiteral("database.dsn"),
                       QStringLiteral("the option \"%1\" is not allowed in the URL (allowed: "
                                      "%2; a password goes in ~/.pgpass, database.passwordEnv "
                                      "or the keychain)")
                           .arg(key, allowed.join(QStringLiteral(", "))));
            } else if (!option->values.match(given).hasMatch()) {
                v.fail(QStringLiteral("database.dsn"),
                       QStringLiteral("%1=\"%2\" is not allowed: expected %3")
                           .arg(key, given, QLatin1String(option->expected)));
            }
        }
    } else {
        v.fail(QStringLiteral("database.dsn"),
               QStringLiteral("expected a postgresql:// or sqlite:/// URL"));
    }
    if (const auto pw = v.string(d, QStringLiteral("passwordEnv"),
                                 QStringLiteral("database.passwordEnv"), false)) {
        static const QRegularExpression re(QStringLiteral("^[A-Za-z_][A-Za-z0-9_]*$"));
        if (!re.match(*pw).hasMatch())
            v.fail(QStringLiteral("database.passwordEnv"),
                   QStringLiteral("expected the name of an environment variable"));
        target.passwordEnv = *pw;
    }
    const QJsonValue keychain = d.value(QStringLiteral("keychain"));
    if (!keychain.isUndefined()) {
        if (!keychain.isBool())
            v.fail(QStringLiteral("database.keychain"), QStringLiteral("expected true or false"));
        else if (keychain.toBool())
            target.keychainKey = env.name + QStringLiteral("/database");
        if (keychain.toBool() && !target.passwordEnv.isEmpty())
            v.fail(
                QStringLiteral("database"),
                QStringLiteral("passwordEnv and keychain both name a password source; keep one"));
        if (keychain.toBool() && target.isSqlite())
            v.fail(QStringLiteral("database.keychain"), QStringLiteral("SQLite has no password"));
    }
    env.database = target;
}

void parseProcesses(Validator &v, const QJsonObject &o, Environment &env)
{
    const QJsonValue value = o.value(QStringLiteral("processes"));
    if (!value.isArray() || value.toArray().isEmpty()) {
        v.fail(QStringLiteral("processes"),
               QStringLiteral("a native environment needs a list of processes to run"));
        return;
    }
    const QJsonArray list = value.toArray();
    QSet<QString> seen;
    for (qsizetype i = 0; i < list.size(); ++i) {
        const QString field = QStringLiteral("processes[%1]").arg(i);
        if (!list.at(i).isObject()) {
            v.fail(field, QStringLiteral("expected an object with a name and a program"));
            continue;
        }
        const QJsonObject p = list.at(i).toObject();
        v.onlyKeys(p, field,
                   { QStringLiteral("name"), QStringLiteral("program"), QStringLiteral("args"),
                     QStringLiteral("env"), QStringLiteral("workingDirectory"),
                     QStringLiteral("stopGraceSeconds") });
        NativeProcess np;
        if (const auto name =
                v.string(p, QStringLiteral("name"), field + QStringLiteral(".name"), true)) {
            np.name = *name;
            if (!isValidServiceName(np.name))
                v.fail(field + QStringLiteral(".name"),
                       QStringLiteral("\"%1\" is not a valid name").arg(np.name));
            else if (seen.contains(np.name))
                v.fail(field + QStringLiteral(".name"),
                       QStringLiteral("\"%1\" is listed twice").arg(np.name));
            seen.insert(np.name);
        }
        if (const auto program =
                v.string(p, QStringLiteral("program"), field + QStringLiteral(".program"), true)) {
            np.program = program->contains(QLatin1Char('/')) ? v.path(*program) : *program;
            if (np.program.isEmpty())
                v.fail(field + QStringLiteral(".program"), QStringLiteral("must not be empty"));
        }
        np.arguments = v.stringList(p, QStringLiteral("args"), field + QStringLiteral(".args"));
        const QJsonValue envValue = p.value(QStringLiteral("env"));
        if (!envValue.isUndefined()) {
            if (!envValue.isObject()) {
                v.fail(field + QStringLiteral(".env"),
                       QStringLiteral("expected an object of NAME: \"value\""));
            } else {
                const QJsonObject e = envValue.toObject();
                for (auto it = e.begin(); it != e.end(); ++it) {
                    const QString f = field + QStringLiteral(".env.") + it.key();
                    if (!it.value().isString())
                        v.fail(f, QStringLiteral("expected a string value"));
                    else
                        np.environment.insert(it.key(), v.expand(it.value().toString(), f));
                }
            }
        }
        if (const auto wd = v.string(p, QStringLiteral("workingDirectory"),
                                     field + QStringLiteral(".workingDirectory"), false))
            np.workingDirectory = v.path(*wd);
        if (const auto s = v.number(p, QStringLiteral("stopGraceSeconds"),
                                    field + QStringLiteral(".stopGraceSeconds"), 0, 600))
            np.stopGraceMs = int(*s * 1000);
        env.processes << np;
    }
}

void parseCompose(Validator &v, const QJsonObject &o, Environment &env)
{
    const QJsonValue value = o.value(QStringLiteral("compose"));
    if (!value.isObject()) {
        v.fail(QStringLiteral("compose"),
               QStringLiteral("a compose environment needs {\"files\": [...], \"project\": "
                              "\"name\"}"));
        return;
    }
    const QJsonObject c = value.toObject();
    v.onlyKeys(c, QStringLiteral("compose"),
               { QStringLiteral("files"), QStringLiteral("project"), QStringLiteral("envFile") });
    const QStringList files =
        v.stringList(c, QStringLiteral("files"), QStringLiteral("compose.files"));
    if (files.isEmpty())
        v.fail(QStringLiteral("compose.files"), QStringLiteral("list at least one compose file"));
    const bool remote = env.isRemote();
    for (const QString &f : files) {
        const QString abs = v.path(f);
        if (!remote && !QFileInfo(abs).isFile())
            v.fail(QStringLiteral("compose.files"), QStringLiteral("%1 does not exist").arg(abs));
        env.composeFiles << abs;
    }
    if (const auto project =
            v.string(c, QStringLiteral("project"), QStringLiteral("compose.project"), true)) {
        env.project = *project;
        if (!isValidProjectName(env.project))
            v.fail(QStringLiteral("compose.project"),
                   QStringLiteral("\"%1\" is not a valid project name (lowercase letters, "
                                  "digits, '_' and '-', starting with a letter or digit)")
                       .arg(env.project));
    }
    if (const auto envFile =
            v.string(c, QStringLiteral("envFile"), QStringLiteral("compose.envFile"), false)) {
        env.envFile = v.path(*envFile);
        if (!QFileInfo(env.envFile).isFile())
            v.fail(QStringLiteral("compose.envFile"),
                   QStringLiteral("%1 does not exist").arg(env.envFile));
    }
}

void parseSwarm(Validator &v, const QJsonObject &o, Environment &env)
{
    const QJsonValue value = o.value(QStringLiteral("swarm"));
    if (!value.isObject()) {
        v.fail(QStringLiteral("swarm"),
               QStringLiteral("a swarm environment needs {\"stack\": \"name\", \"files\": "
                              "[\"compose.stack.yaml\"]}"));
        return;
    }
    const QJsonObject c = value.toObject();
    v.onlyKeys(c, QStringLiteral("swarm"),
               { QStringLiteral("files"), QStringLiteral("stack"), QStringLiteral("envFile"),
                 QStringLiteral("secrets") });
    const QStringList files =
        v.stringList(c, QStringLiteral("files"), QStringLiteral("swarm.files"));
    if (files.isEmpty())
        v.fail(QStringLiteral("swarm.files"), QStringLiteral("list at least one stack file"));
    for (const QString &f : files) {
        const QString abs = v.path(f);
        env.composeFiles << abs;
        if (!QFileInfo(abs).isFile()) {
            v.fail(QStringLiteral("swarm.files"), QStringLiteral("%1 does not exist").arg(abs));
            continue;
        }
        // What the stack deployer would refuse, said now; the variables are
        // checked when it deploys (.env may not be made yet).
        const auto file = readStackFile(abs, [](const QString &name) -> std::optional<QString> {
            return qEnvironmentVariableIsSet(qPrintable(name))
                ? std::optional<QString>(qEnvironmentVariable(qPrintable(name)))
                : std::nullopt;
        });
        if (!file)
            v.fail(QStringLiteral("swarm.files"), file.error());
        else
            for (const QString &problem : file->problems)
                v.fail(QStringLiteral("swarm.files"), problem);
    }
    if (const auto stack =
            v.string(c, QStringLiteral("stack"), QStringLiteral("swarm.stack"), true)) {
        env.project = *stack;
        if (!isValidProjectName(env.project))
            v.fail(QStringLiteral("swarm.stack"),
                   QStringLiteral("\"%1\" is not a valid stack name (lowercase letters, "
                                  "digits, '_' and '-', starting with a letter or digit)")
                       .arg(env.project));
    }
    if (const auto envFile =
            v.string(c, QStringLiteral("envFile"), QStringLiteral("swarm.envFile"), false)) {
        env.envFile = v.path(*envFile);
        if (!QFileInfo(env.envFile).isFile())
            v.fail(QStringLiteral("swarm.envFile"),
                   QStringLiteral("%1 does not exist").arg(env.envFile));
    }
    const QJsonValue secrets = c.value(QStringLiteral("secrets"));
    if (!secrets.isUndefined() && !secrets.isObject()) {
        v.fail(QStringLiteral("swarm.secrets"),
               QStringLiteral("expected {\"secret\": \"${VARIABLE}\"}, the value each secret "
                              "the stack declares gets when the panel makes it"));
    } else {
        const QJsonObject map = secrets.toObject();
        for (auto it = map.begin(); it != map.end(); ++it) {
            if (!isValidServiceName(it.key()))
                v.fail(QStringLiteral("swarm.secrets"),
                       QStringLiteral("\"%1\" is not a valid secret name").arg(it.key()));
            else if (!it.value().isString() || it.value().toString().isEmpty())
                v.fail(
                    QStringLiteral("swarm.secrets.%1").arg(it.key()),
                    QStringLiteral("expected a template like \"${%1}\"").arg(it.key().toUpper()));
            else if (!it.value().toString().contains(QLatin1Char('$')))
                v.fail(QStringLiteral("swarm.secrets.%1").arg(it.key()),
                       QStringLiteral("holds a value itself; name the variable that holds it "
                                      "(\"${NAME}\", set in .env or the environment): "
                                      "secrets are not written into environments.json"));
            else
                env.swarmSecrets << std::pair { it.key(), it.value().toString() };
        }
    }
}

void parseDocker(Validator &v, const QJsonObject &o, Environment &env)
{
    const QJsonValue value = o.value(QStringLiteral("docker"));
    if (value.isUndefined())
        return;
    if (!value.isObject()) {
        v.fail(
            QStringLiteral("docker"),
            QStringLiteral("expected {\"context\": \"name\"} or {\"host\": \"ssh://user@host\"}"));
        return;
    }
    const QJsonObject d = value.toObject();
    v.onlyKeys(
        d, QStringLiteral("docker"),
        { QStringLiteral("context"), QStringLiteral("host"), QStringLiteral("identityFile") });
    if (const auto ctx =
            v.string(d, QStringLiteral("context"), QStringLiteral("docker.context"), false)) {
        static const QRegularExpression re(QStringLiteral("^[a-zA-Z0-9][a-zA-Z0-9_.+-]*$"));
        if (!re.match(*ctx).hasMatch())
            v.fail(QStringLiteral("docker.context"),
                   QStringLiteral("\"%1\" is not a valid context name").arg(*ctx));
        env.dockerContext = *ctx;
    }
    if (const auto host =
            v.string(d, QStringLiteral("host"), QStringLiteral("docker.host"), false)) {
        const QUrl url(*host, QUrl::StrictMode);
        const QString scheme = url.scheme();
        if (!url.isValid() ||
            !(scheme == QLatin1String("unix") || scheme == QLatin1String("tcp") ||
              scheme == QLatin1String("ssh")) ||
            (scheme != QLatin1String("unix") && url.host().isEmpty())) {
            v.fail(QStringLiteral("docker.host"),
                   QStringLiteral("expected unix:///path, tcp://host:port or ssh://user@host, "
                                  "got \"%1\"")
                       .arg(redactUserInfo(*host)));
        } else if (!url.password().isEmpty()) {
            v.fail(QStringLiteral("docker.host"), QStringLiteral("must not contain a password"));
        }
        env.dockerHost = *host;
    }
    if (!env.dockerContext.isEmpty() && !env.dockerHost.isEmpty()) {
        v.fail(QStringLiteral("docker"), QStringLiteral("set either context or host, not both"));
        return;
    }
    if (const auto key = v.string(d, QStringLiteral("identityFile"),
                                  QStringLiteral("docker.identityFile"), false)) {
        QString path = *key;
        if (path.startsWith(QLatin1String("~/")))
            path = QDir::home().filePath(path.mid(2));
        env.sshIdentityFile = v.path(path);
        if (!env.dockerHost.startsWith(QLatin1String("ssh://")))
            v.fail(QStringLiteral("docker.identityFile"),
                   QStringLiteral("only for an engine reached over SSH (docker.host "
                                  "ssh://user@host)"));
        else if (!QFileInfo(env.sshIdentityFile).isFile())
            v.fail(QStringLiteral("docker.identityFile"),
                   QStringLiteral("%1 does not exist (a private key, like ~/.ssh/id_ed25519)")
                       .arg(env.sshIdentityFile));
    }
    // A context is its endpoint: the same code path as a host (an ssh:// one
    // through the panel's SSH connection), whatever compose is installed.
    if (!env.dockerContext.isEmpty() && env.dockerContext != QLatin1String("default")) {
        if (const QString host = dockerContextHost(env.dockerContext); !host.isEmpty()) {
            env.dockerHost = host;
            env.dockerContext.clear();
        }
    }
}

void parseImage(Validator &v, const QJsonObject &o, Environment &env)
{
    const QJsonValue value = o.value(QStringLiteral("image"));
    if (value.isUndefined())
        return;
    if (!value.isObject()) {
        v.fail(QStringLiteral("image"),
               QStringLiteral("expected {\"repository\": \"ghcr.io/org/deckhand\", \"service\": "
                              "\"api\"}"));
        return;
    }
    const QJsonObject i = value.toObject();
    v.onlyKeys(i, QStringLiteral("image"),
               { QStringLiteral("repository"), QStringLiteral("service"),
                 QStringLiteral("services"), QStringLiteral("repositoryVariable"),
                 QStringLiteral("tagVariable"), QStringLiteral("user"), QStringLiteral("tokenEnv"),
                 QStringLiteral("keychain"), QStringLiteral("tokenRealm"),
                 QStringLiteral("source") });
    if (const auto source =
            v.string(i, QStringLiteral("source"), QStringLiteral("image.source"), false)) {
        if (*source == QLatin1String("engine"))
            env.imageSource = Environment::ImageSource::Engine;
        else if (*source == QLatin1String("registry"))
            env.imageSource = Environment::ImageSource::Registry;
        else
            v.fail(QStringLiteral("image.source"),
                   QStringLiteral("expected \"registry\" (tags from the image's registry) or "
                                  "\"engine\" (the engine's local builds), got \"%1\"")
                       .arg(*source));
    }
    if (const auto realm =
            v.string(i, QStringLiteral("tokenRealm"), QStringLiteral("image.tokenRealm"), false)) {
        static const QRegularExpression host(
            QStringLiteral("^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*["
                           "A-Za-z0-9])?)*$"));
        if (!host.match(*realm).hasMatch())
            v.fail(QStringLiteral("image.tokenRealm"),
                   QStringLiteral("expected the host name of the registry's token service (like "
                                  "auth.example.com, no scheme, port or path), got \"%1\"")
                       .arg(*realm));
        env.registryTokenRealm = *realm;
    }
    if (const auto repo =
            v.string(i, QStringLiteral("repository"), QStringLiteral("image.repository"), true)) {
        if (!isValidRepository(*repo))
            v.fail(QStringLiteral("image.repository"),
                   QStringLiteral("\"%1\" is not an image repository (like "
                                  "ghcr.io/org/name, without a tag)")
                       .arg(*repo));
        env.imageRepository = *repo;
    }
    const QJsonValue services = i.value(QStringLiteral("services"));
    const bool hasOne = i.contains(QStringLiteral("service"));
    if (!services.isUndefined() && hasOne) {
        v.fail(QStringLiteral("image.service"),
               QStringLiteral("give either image.services (every service that runs the image) "
                              "or the older image.service, not both"));
    } else if (!services.isUndefined()) {
        if (!services.isArray() || services.toArray().isEmpty()) {
            v.fail(QStringLiteral("image.services"),
                   QStringLiteral("expected a non-empty list of the services that run the image, "
                                  "e.g. [\"api\", \"worker\"]"));
        } else {
            const QJsonArray list = services.toArray();
            for (qsizetype k = 0; k < list.size(); ++k) {
                const QString field = QStringLiteral("image.services[%1]").arg(k);
                const QString name = list.at(k).toString();
                if (!list.at(k).isString() || !isValidServiceName(name))
                    v.fail(field,
                           QStringLiteral("\"%1\" is not a valid service name")
                               .arg(list.at(k).isString() ? name : QStringLiteral("?")));
                else if (env.imageServices.contains(name))
                    v.fail(field, QStringLiteral("\"%1\" is listed twice").arg(name));
                else
                    env.imageServices << name;
            }
        }
    } else if (const auto service =
                   v.string(i, QStringLiteral("service"), QStringLiteral("image.services"), true)) {
        if (!isValidServiceName(*service))
            v.fail(QStringLiteral("image.service"),
                   QStringLiteral("\"%1\" is not a valid service name").arg(*service));
        else
            env.imageServices << *service;
    }
    static const QRegularExpression variable(QStringLiteral("^[A-Za-z_][A-Za-z0-9_]*$"));
    for (const auto &[key, target] :
         { std::pair { QStringLiteral("repositoryVariable"), &env.repositoryVariable },
           std::pair { QStringLiteral("tagVariable"), &env.tagVariable },
           std::pair { QStringLiteral("tokenEnv"), &env.registryTokenEnv } }) {
        const QString field = QStringLiteral("image.") + key;
        if (const auto name = v.string(i, key, field, false)) {
            if (!variable.match(*name).hasMatch())
                v.fail(field,
                       QStringLiteral("expected the name of a variable (letters, digits, '_'), "
                                      "got \"%1\"")
                           .arg(*name));
            *target = *name;
        }
    }
    if (env.repositoryVariable == env.tagVariable)
        v.fail(QStringLiteral("image.tagVariable"),
               QStringLiteral("must differ from image.repositoryVariable"));
    if (const auto user = v.string(i, QStringLiteral("user"), QStringLiteral("image.user"), false))
        env.registryUser = *user;
    const QJsonValue keychain = i.value(QStringLiteral("keychain"));
    if (!keychain.isUndefined()) {
        if (!keychain.isBool())
            v.fail(QStringLiteral("image.keychain"), QStringLiteral("expected true or false"));
        else if (keychain.toBool())
            env.registryKeychainKey = env.name + QStringLiteral("/registry");
    }
    if (!env.registryTokenEnv.isEmpty() && !env.registryKeychainKey.isEmpty())
        v.fail(QStringLiteral("image"),
               QStringLiteral("tokenEnv and keychain both name a token source; keep one"));
    if ((!env.registryTokenEnv.isEmpty() || !env.registryKeychainKey.isEmpty()) &&
        env.registryUser.isEmpty())
        v.fail(QStringLiteral("image.user"),
               QStringLiteral("a registry token needs the user name it belongs to"));
}

void parseDeploy(Validator &v, const QJsonObject &o, Environment &env)
{
    const QJsonValue value = o.value(QStringLiteral("deploy"));
    if (value.isUndefined())
        return;
    if (!value.isObject()) {
        v.fail(QStringLiteral("deploy"),
               QStringLiteral("expected {\"healthWindowSeconds\": 10, \"timeoutSeconds\": 120}"));
        return;
    }
    const QJsonObject d = value.toObject();
    v.onlyKeys(d, QStringLiteral("deploy"),
               { QStringLiteral("healthWindowSeconds"), QStringLiteral("timeoutSeconds"),
                 QStringLiteral("strategy"), QStringLiteral("containerPort") });
    if (const auto strategy =
            v.string(d, QStringLiteral("strategy"), QStringLiteral("deploy.strategy"), false)) {
        if (*strategy == QLatin1String("recreate"))
            env.rollout = Environment::Rollout::Recreate;
        else if (*strategy == QLatin1String("start-first"))
            env.rollout = Environment::Rollout::StartFirst;
        else
            v.fail(QStringLiteral("deploy.strategy"),
                   QStringLiteral("\"%1\" is not a strategy; expected \"recreate\" (stop the old "
                                  "container, then start the new one) or \"start-first\" (the "
                                  "new one next to the old one, behind a proxy)")
                       .arg(*strategy));
    }
    if (const auto port = v.number(d, QStringLiteral("containerPort"),
                                   QStringLiteral("deploy.containerPort"), 1, 65535)) {
        if (*port != std::floor(*port))
            v.fail(QStringLiteral("deploy.containerPort"),
                   QStringLiteral("expected a port number"));
        env.containerPort = int(*port);
    }
    if (env.rollout == Environment::Rollout::StartFirst && env.kind == EnvironmentKind::Native)
        v.fail(QStringLiteral("deploy.strategy"),
               QStringLiteral("start-first needs a compose environment; native processes are "
                              "restarted in place"));
    if (const auto s = v.number(d, QStringLiteral("healthWindowSeconds"),
                                QStringLiteral("deploy.healthWindowSeconds"), 0, 3600))
        env.healthWindowMs = int(*s * 1000);
    if (const auto s = v.number(d, QStringLiteral("timeoutSeconds"),
                                QStringLiteral("deploy.timeoutSeconds"), 1, 3600))
        env.deployTimeoutMs = int(*s * 1000);
    if (env.deployTimeoutMs <= env.healthWindowMs)
        v.fail(QStringLiteral("deploy.timeoutSeconds"),
               QStringLiteral("must be longer than deploy.healthWindowSeconds"));
    if (d.contains(QStringLiteral("healthWindowSeconds")) && env.imageRepository.isEmpty() &&
        !o.contains(QStringLiteral("image")))
        v.fail(QStringLiteral("deploy"), QStringLiteral("needs an image to deploy"));
}

} // namespace

namespace {

struct ParseOptions
{
    // An environment with problems goes to EnvironmentSet::invalid instead
    // of failing the whole file.
    bool keepValid = false;
    // The built-in file, with no stack folder found.
    bool stackMissing = false;
};

Expected<EnvironmentSet> parseWith(const QByteArray &json, const QString &source,
                                   const QDir &baseDir, QList<EnvironmentIssue> *issues,
                                   ParseOptions options = {})
{
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(json, &parseError);
    if (parseError.error != QJsonParseError::NoError) {
        const QByteArray before = json.left(parseError.offset);
        const qsizetype line = before.count('\n') + 1;
        const QString message =
            QStringLiteral("line %1: not valid JSON: %2").arg(line).arg(parseError.errorString());
        if (issues)
            *issues << EnvironmentIssue { {}, {}, message };
        return Error { source + QStringLiteral(": ") + message };
    }
    Validator v(source, baseDir);
    if (!doc.isObject()) {
        const QString message =
            QStringLiteral("expected an object {\"version\": 1, \"environments\": [...]}");
        if (issues)
            *issues << EnvironmentIssue { {}, {}, message };
        return Error { source + QStringLiteral(": ") + message };
    }
    const QJsonObject root = doc.object();
    v.onlyKeys(root, {}, { QStringLiteral("version"), QStringLiteral("environments") });
    if (root.value(QStringLiteral("version")).toInt(-1) != 1)
        v.fail(QStringLiteral("version"), QStringLiteral("expected 1 (the only format so far)"));
    const QJsonValue envs = root.value(QStringLiteral("environments"));
    if (!envs.isArray() || envs.toArray().isEmpty())
        v.fail(QStringLiteral("environments"), QStringLiteral("expected a non-empty list"));

    EnvironmentSet set;
    set.source = source;
    QSet<QString> seen;
    const QJsonArray list = envs.toArray();
    for (qsizetype i = 0; i < list.size(); ++i) {
        v.environment.clear();
        if (!list.at(i).isObject()) {
            v.fail(QStringLiteral("environments[%1]").arg(i), QStringLiteral("expected an object"));
            continue;
        }
        const QJsonObject o = list.at(i).toObject();
        Environment env;
        const qsizetype errorsBefore = v.errors.size();
        const QString name = o.value(QStringLiteral("name")).toString();
        v.environment = name.isEmpty() ? QStringLiteral("#%1").arg(i + 1) : name;
        v.onlyKeys(o, {},
                   { QStringLiteral("name"), QStringLiteral("kind"), QStringLiteral("description"),
                     QStringLiteral("compose"), QStringLiteral("swarm"), QStringLiteral("docker"),
                     QStringLiteral("processes"), QStringLiteral("services"),
                     QStringLiteral("database"), QStringLiteral("image"),
                     QStringLiteral("deploy") });
        if (!isValidEnvironmentName(name))
            v.fail(QStringLiteral("name"),
                   QStringLiteral("expected lowercase letters, digits, '_' or '-' (like "
                                  "\"staging\"), got \"%1\"")
                       .arg(name));
        else if (seen.contains(name))
            v.fail(QStringLiteral("name"), QStringLiteral("defined twice"));
        seen.insert(name);
        env.name = name;
        env.description =
            v.string(o, QStringLiteral("description"), QStringLiteral("description"), false)
                .value_or(QString());
        const QString kind = o.value(QStringLiteral("kind")).toString();
        if (kind == QLatin1String("native")) {
            env.kind = EnvironmentKind::Native;
        } else if (kind == QLatin1String("compose")) {
            env.kind = EnvironmentKind::Compose;
        } else if (kind == QLatin1String("swarm")) {
            env.kind = EnvironmentKind::Swarm;
        } else {
            v.fail(QStringLiteral("kind"),
                   QStringLiteral("expected \"native\", \"compose\" or \"swarm\", got \"%1\"")
                       .arg(kind));
        }
        parseDocker(v, o, env);
        if (env.kind == EnvironmentKind::Native) {
            parseProcesses(v, o, env);
            if (o.contains(QStringLiteral("compose")))
                v.fail(QStringLiteral("compose"), QStringLiteral("only for kind \"compose\""));
            if (o.contains(QStringLiteral("swarm")))
                v.fail(QStringLiteral("swarm"), QStringLiteral("only for kind \"swarm\""));
            if (o.contains(QStringLiteral("docker")))
                v.fail(QStringLiteral("docker"),
                       QStringLiteral("only for kind \"compose\" or \"swarm\""));
        } else if (env.kind == EnvironmentKind::Compose) {
            parseCompose(v, o, env);
            if (o.contains(QStringLiteral("processes")))
                v.fail(QStringLiteral("processes"), QStringLiteral("only for kind \"native\""));
            if (o.contains(QStringLiteral("swarm")))
                v.fail(QStringLiteral("swarm"), QStringLiteral("only for kind \"swarm\""));
        } else if (env.kind == EnvironmentKind::Swarm) {
            parseSwarm(v, o, env);
            for (const char *key : { "processes", "compose" }) {
                if (o.contains(QLatin1String(key)))
                    v.fail(QLatin1String(key),
                           QStringLiteral("not for kind \"swarm\" (its files are swarm.files)"));
            }
        }
        parseServices(v, o, env);
        parseDatabase(v, o, env);
        parseImage(v, o, env);
        parseDeploy(v, o, env);
        const bool named = isValidEnvironmentName(name) &&
            std::none_of(v.errors.begin() + errorsBefore, v.errors.end(), [](const QString &e) {
                               return e.endsWith(QLatin1String(": defined twice"));
                           });
        if (v.errors.size() == errorsBefore) {
            set.environments << env;
        } else if (options.keepValid && named) {
            // Its own problems make it unusable, not the file.
            InvalidEnvironment bad {
                name, o.value(QStringLiteral("kind")).toString(), env.description, {}, false
            };
            QStringList reasons;
            const QString prefix = source + QStringLiteral(": environment \"%1\": ").arg(name);
            for (qsizetype e = errorsBefore; e < v.errors.size(); ++e) {
                QString line = v.errors.at(e);
                if (line.startsWith(prefix))
                    line = line.mid(prefix.size());
                reasons << line;
            }
            const bool composeFilesMissing = env.usesDocker() && !env.isRemote() &&
                std::any_of(env.composeFiles.begin(), env.composeFiles.end(),
                            [](const QString &f) { return !QFileInfo(f).isFile(); });
            if (options.stackMissing && composeFilesMissing) {
                bad.needsStackFolder = true;
                reasons = QStringList { QStringLiteral(
                    "needs its stack folder (compose.yaml, .env.example, docker/), which is not "
                    "here: choose a checkout of Pilothouse once with pilothousectl stack-folder "
                    "PATH or File > Choose Stack Folder in the window, or run from a checkout") };
            }
            bad.reason = reasons.join(QLatin1Char('\n'));
            set.invalid << bad;
            v.errors.resize(errorsBefore);
        }
    }
    if (issues)
        *issues = v.issues;
    if (!v.errors.isEmpty())
        return Error { v.errors.join(QLatin1Char('\n')) };
    return set;
}

Expected<EnvironmentSet> parseLenient(const QByteArray &json, const QString &source,
                                      const QDir &baseDir, bool stackMissing)
{
    return parseWith(json, source, baseDir, nullptr, ParseOptions { true, stackMissing });
}

} // namespace

Expected<EnvironmentSet> parseEnvironments(const QByteArray &json, const QString &source,
                                           const QDir &baseDir)
{
    return parseWith(json, source, baseDir, nullptr);
}

QList<EnvironmentIssue> environmentIssues(const QByteArray &json, const QString &source,
                                          const QDir &baseDir)
{
    QList<EnvironmentIssue> issues;
    (void)parseWith(json, source, baseDir, &issues);
    return issues;
}

Outcome saveEnvironmentsFile(const QString &path, const QByteArray &json)
{
    const QFileInfo info(path);
    if (const auto parsed = parseEnvironments(json, path, info.absoluteDir()); !parsed)
        return Error { parsed.error() };
    if (!QDir().mkpath(info.absolutePath()))
        return Error {
            QStringLiteral("%1: cannot create the folder %2").arg(path, info.absolutePath())
        };
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return Error { QStringLiteral("%1: cannot write: %2").arg(path, file.errorString()) };
    file.write(json);
    if (!file.commit())
        return Error { QStringLiteral("%1: cannot write: %2").arg(path, file.errorString()) };
    return success();
}

} // namespace pilothouse
