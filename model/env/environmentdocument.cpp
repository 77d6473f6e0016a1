#include "env/environmentdocument.h"

#include "core/secrets.h"
#include "env/environment.h"

#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QPointer>
#include <memory>

namespace pilothouse {

namespace {

QString str(const QJsonObject &o, const char *key)
{
    return o.value(QLatin1String(key)).toString();
}

QJsonObject sub(const QJsonObject &o, const char *key)
{
    return o.value(QLatin1String(key)).toObject();
}

void setOrRemove(QJsonObject &o, const QString &key, const QString &value)
{
    if (value.trimmed().isEmpty())
        o.remove(key);
    else
        o.insert(key, value.trimmed());
}

void setObject(QJsonObject &o, const QString &key, const QJsonObject &value)
{
    if (value.isEmpty())
        o.remove(key);
    else
        o.insert(key, value);
}

SecretSource sourceOf(const QJsonObject &o, const char *variableKey)
{
    if (o.value(u"keychain").toBool())
        return SecretSource::Keychain;
    return o.contains(QLatin1String(variableKey)) ? SecretSource::Variable : SecretSource::None;
}

// A typed number stays a number; anything else is kept as typed, so
// validation names the field and says what is expected.
void setNumberOrText(QJsonObject &o, const QString &key, const QString &typed)
{
    bool ok = false;
    const double v = typed.trimmed().toDouble(&ok);
    if (ok)
        o.insert(key, v);
    else if (!typed.trimmed().isEmpty())
        o.insert(key, typed.trimmed());
}

QString numberText(const QJsonObject &o, const char *key)
{
    const QJsonValue v = o.value(QLatin1String(key));
    if (v.isDouble())
        return QString::number(v.toDouble());
    return v.toString();
}

} // namespace

double EnvironmentFields::defaultHealthWindowSeconds()
{
    return Environment {}.healthWindowMs / 1000.0;
}

double EnvironmentFields::defaultDeployTimeoutSeconds()
{
    return Environment {}.deployTimeoutMs / 1000.0;
}

EnvironmentDocument::EnvironmentDocument(const QByteArray &text)
{
    const QJsonDocument doc = QJsonDocument::fromJson(text);
    if (doc.isObject()) {
        m_root = doc.object();
        m_environments = m_root.value(u"environments").toArray();
    }
}

QString EnvironmentDocument::name(int index) const
{
    return m_environments.at(index).toObject().value(u"name").toString();
}

int EnvironmentDocument::indexOf(const QString &name) const
{
    for (int i = 0; i < size(); ++i) {
        if (this->name(i) == name)
            return i;
    }
    return -1;
}

EnvironmentFields EnvironmentDocument::fields(int index) const
{
    const QJsonObject e = m_environments.at(index).toObject();
    EnvironmentFields f;
    f.name = str(e, "name");
    f.kind = str(e, "kind") == QLatin1String("native") ? QStringLiteral("native")
        : str(e, "kind") == QLatin1String("swarm")     ? QStringLiteral("swarm")
                                                       : QStringLiteral("compose");
    f.description = str(e, "description");
    // A swarm's stack files and stack name take the compose fields' places.
    const bool swarm = f.kind == QLatin1String("swarm");
    const QJsonObject compose = sub(e, swarm ? "swarm" : "compose");
    for (const QJsonValue &v : compose.value(u"files").toArray())
        f.composeFiles << v.toString();
    f.project = str(compose, swarm ? "stack" : "project");
    f.envFile = str(compose, "envFile");
    f.dockerHost = str(sub(e, "docker"), "host");
    f.dockerContext = str(sub(e, "docker"), "context");
    f.identityFile = str(sub(e, "docker"), "identityFile");
    if (e.contains(u"processes")) {
        const QJsonValue p = e.value(u"processes");
        f.processes =
            p.isArray() ? QString::fromUtf8(QJsonDocument(p.toArray()).toJson()) : p.toString();
    }
    for (const QJsonValue &sv : e.value(u"services").toArray()) {
        const QJsonObject s = sv.toObject();
        const QJsonArray health = s.value(u"health").toArray();
        if (health.isEmpty())
            f.endpoints.append({ str(s, "name"), {}, {}, {} });
        for (const QJsonValue &hv : health) {
            const QJsonObject h = hv.toObject();
            f.endpoints.append({ str(s, "name"), str(h, "url"), numberText(h, "intervalSeconds"),
                                 numberText(h, "timeoutSeconds") });
        }
    }
    const QJsonObject db = sub(e, "database");
    f.dsn = str(db, "dsn");
    f.passwordSource = sourceOf(db, "passwordEnv");
    f.passwordEnv = str(db, "passwordEnv");
    const QJsonObject image = sub(e, "image");
    f.repository = str(image, "repository");
    for (const QJsonValue &v : image.value(u"services").toArray())
        f.imageServices << v.toString();
    if (f.imageServices.isEmpty() && image.contains(u"service"))
        f.imageServices << str(image, "service");
    f.registryUser = str(image, "user");
    f.tokenSource = sourceOf(image, "tokenEnv");
    f.tokenEnv = str(image, "tokenEnv");
    const QJsonObject deploy = sub(e, "deploy");
    f.healthWindowSeconds = deploy.value(u"healthWindowSeconds")
                                .toDouble(EnvironmentFields::defaultHealthWindowSeconds());
    f.deployTimeoutSeconds =
        deploy.value(u"timeoutSeconds").toDouble(EnvironmentFields::defaultDeployTimeoutSeconds());
    f.strategy = str(deploy, "strategy");
    return f;
}

void EnvironmentDocument::setFields(int index, const EnvironmentFields &f)
{
    QJsonObject e = m_environments.at(index).toObject();
    const QJsonObject raw = e;
    e.insert(QStringLiteral("name"), f.name.trimmed());
    e.insert(QStringLiteral("kind"), f.kind);
    setOrRemove(e, QStringLiteral("description"), f.description);
    if (f.kind == QLatin1String("compose") || f.kind == QLatin1String("swarm")) {
        // A swarm keeps the rest of its section (its secrets' templates).
        const bool swarm = f.kind == QLatin1String("swarm");
        const QString section = swarm ? QStringLiteral("swarm") : QStringLiteral("compose");
        e.remove(QStringLiteral("processes"));
        e.remove(swarm ? QStringLiteral("compose") : QStringLiteral("swarm"));
        QJsonObject compose = raw.value(section).toObject();
        QJsonArray files;
        for (const QString &file : f.composeFiles) {
            if (!file.trimmed().isEmpty())
                files.append(file.trimmed());
        }
        compose.insert(QStringLiteral("files"), files);
        compose.insert(swarm ? QStringLiteral("stack") : QStringLiteral("project"),
                       f.project.trimmed());
        setOrRemove(compose, QStringLiteral("envFile"), f.envFile);
        e.insert(section, compose);
        QJsonObject docker = sub(raw, "docker");
        setOrRemove(docker, QStringLiteral("host"), f.dockerHost);
        setOrRemove(docker, QStringLiteral("context"), f.dockerContext);
        setOrRemove(docker, QStringLiteral("identityFile"), f.identityFile);
        setObject(e, QStringLiteral("docker"), docker);
    } else {
        e.remove(QStringLiteral("compose"));
        e.remove(QStringLiteral("swarm"));
        e.remove(QStringLiteral("docker"));
        const QJsonDocument doc = QJsonDocument::fromJson(f.processes.toUtf8());
        e.insert(QStringLiteral("processes"),
                 doc.isArray() ? QJsonValue(doc.array()) : QJsonValue(f.processes));
    }
    // Rows of one name are that service's endpoints, in order.
    QJsonArray services;
    QHash<QString, qsizetype> at;
    for (const EnvironmentFields::Endpoint &row : f.endpoints) {
        const QString name = row.service.trimmed();
        if (name.isEmpty() && row.url.trimmed().isEmpty())
            continue;
        if (!at.contains(name)) {
            at.insert(name, services.size());
            services.append(QJsonObject { { QStringLiteral("name"), name } });
        }
        if (row.url.trimmed().isEmpty())
            continue;
        QJsonObject h { { QStringLiteral("url"), row.url.trimmed() } };
        setNumberOrText(h, QStringLiteral("intervalSeconds"), row.intervalSeconds);
        setNumberOrText(h, QStringLiteral("timeoutSeconds"), row.timeoutSeconds);
        QJsonObject s = services.at(at.value(name)).toObject();
        QJsonArray list = s.value(u"health").toArray();
        list.append(h);
        s.insert(QStringLiteral("health"), list);
        services.replace(at.value(name), s);
    }
    if (services.isEmpty())
        e.remove(QStringLiteral("services"));
    else
        e.insert(QStringLiteral("services"), services);

    QJsonObject db = sub(raw, "database");
    db.remove(QStringLiteral("passwordEnv"));
    db.remove(QStringLiteral("keychain"));
    setOrRemove(db, QStringLiteral("dsn"), f.dsn);
    if (f.passwordSource == SecretSource::Variable)
        db.insert(QStringLiteral("passwordEnv"), f.passwordEnv.trimmed());
    else if (f.passwordSource == SecretSource::Keychain)
        db.insert(QStringLiteral("keychain"), true);
    setObject(e, QStringLiteral("database"), db);

    QJsonObject image = sub(raw, "image");
    image.remove(QStringLiteral("tokenEnv"));
    image.remove(QStringLiteral("keychain"));
    setOrRemove(image, QStringLiteral("repository"), f.repository);
    // Written in the current form (image.services), whichever form was read.
    image.remove(QStringLiteral("service"));
    image.remove(QStringLiteral("services"));
    QJsonArray imageServices;
    for (const QString &name : f.imageServices) {
        if (!name.trimmed().isEmpty())
            imageServices.append(name.trimmed());
    }
    if (!imageServices.isEmpty())
        image.insert(QStringLiteral("services"), imageServices);
    setOrRemove(image, QStringLiteral("user"), f.registryUser);
    if (f.tokenSource == SecretSource::Variable)
        image.insert(QStringLiteral("tokenEnv"), f.tokenEnv.trimmed());
    else if (f.tokenSource == SecretSource::Keychain)
        image.insert(QStringLiteral("keychain"), true);
    setObject(e, QStringLiteral("image"), image);

    // Defaults are not written: the file says only what differs.
    QJsonObject deploy = sub(raw, "deploy");
    deploy.remove(QStringLiteral("healthWindowSeconds"));
    deploy.remove(QStringLiteral("timeoutSeconds"));
    deploy.remove(QStringLiteral("strategy"));
    if (!f.strategy.trimmed().isEmpty())
        deploy.insert(QStringLiteral("strategy"), f.strategy.trimmed());
    if (!qFuzzyCompare(f.healthWindowSeconds, EnvironmentFields::defaultHealthWindowSeconds()))
        deploy.insert(QStringLiteral("healthWindowSeconds"), f.healthWindowSeconds);
    if (!qFuzzyCompare(f.deployTimeoutSeconds, EnvironmentFields::defaultDeployTimeoutSeconds()))
        deploy.insert(QStringLiteral("timeoutSeconds"), f.deployTimeoutSeconds);
    setObject(e, QStringLiteral("deploy"), deploy);
    m_environments.replace(index, e);
}

int EnvironmentDocument::add()
{
    QString name = QStringLiteral("new");
    for (int n = 2; indexOf(name) >= 0; ++n)
        name = QStringLiteral("new-%1").arg(n);
    m_environments.append(QJsonObject { { QStringLiteral("name"), name },
                                        { QStringLiteral("kind"), QStringLiteral("compose") },
                                        { QStringLiteral("compose"),
                                          QJsonObject { { QStringLiteral("files"), QJsonArray {} },
                                                        { QStringLiteral("project"), name } } } });
    return size() - 1;
}

void EnvironmentDocument::remove(int index)
{
    m_environments.removeAt(index);
}

QByteArray EnvironmentDocument::text() const
{
    QJsonObject root = m_root;
    root.insert(QStringLiteral("version"), 1);
    root.insert(QStringLiteral("environments"), m_environments);
    return QJsonDocument(root).toJson(QJsonDocument::Indented);
}

const QStringList &EnvironmentDocument::fieldKeys()
{
    static const QStringList keys {
        QStringLiteral("name"),
        QStringLiteral("kind"),
        QStringLiteral("description"),
        QStringLiteral("compose.files"),
        QStringLiteral("compose.project"),
        QStringLiteral("compose.envFile"),
        QStringLiteral("docker.host"),
        QStringLiteral("docker.context"),
        QStringLiteral("processes"),
        QStringLiteral("services"),
        QStringLiteral("database.dsn"),
        QStringLiteral("database.keychain"),
        QStringLiteral("database.passwordEnv"),
        QStringLiteral("database.password"),
        QStringLiteral("image.repository"),
        QStringLiteral("image.services"),
        QStringLiteral("image.user"),
        QStringLiteral("image.keychain"),
        QStringLiteral("image.tokenEnv"),
        QStringLiteral("image.token"),
        QStringLiteral("deploy.healthWindowSeconds"),
        QStringLiteral("deploy.timeoutSeconds"),
        QStringLiteral("deploy.strategy"),
    };
    return keys;
}

QString EnvironmentDocument::fieldFor(const QString &path)
{
    // The longest key the path starts with, as a whole segment.
    QString best;
    for (const QString &key : fieldKeys()) {
        const bool match = path == key || path.startsWith(key + QLatin1Char('.')) ||
            path.startsWith(key + QLatin1Char('['));
        if (match && key.size() > best.size())
            best = key;
    }
    if (!best.isEmpty())
        return best;
    // A path the form has no own field for: the section's main field.
    static const QList<std::pair<QString, QString>> sections {
        { QStringLiteral("compose"), QStringLiteral("compose.files") },
        { QStringLiteral("docker"), QStringLiteral("docker.host") },
        { QStringLiteral("database"), QStringLiteral("database.dsn") },
        { QStringLiteral("image"), QStringLiteral("image.repository") },
        { QStringLiteral("deploy"), QStringLiteral("deploy.timeoutSeconds") },
    };
    for (const auto &[section, field] : sections) {
        if (path == section || path.startsWith(section + QLatin1Char('.')) ||
            path.startsWith(section + QLatin1Char('[')))
            return field;
    }
    return {};
}

QList<EnvironmentDocument::Issue> EnvironmentDocument::issues(const QString &path) const
{
    QList<Issue> out;
    for (const EnvironmentIssue &i :
         environmentIssues(text(), path, QFileInfo(path).absoluteDir())) {
        out.append({ i.environment, i.environment.isEmpty() ? QString() : fieldFor(i.field),
                     i.field, i.message });
    }
    return out;
}

void EnvironmentDocument::save(const Save &request, QObject *context,
                               std::function<void(Outcome)> done) const
{
    const QByteArray json = text();
    const auto later = [context, done](Outcome o) {
        QMetaObject::invokeMethod(
            context, [done, o] { done(o); }, Qt::QueuedConnection);
    };
    if (const QList<Issue> found = issues(request.path); !found.isEmpty()) {
        QStringList lines;
        for (const Issue &i : found)
            lines << (i.environment.isEmpty()
                          ? i.message
                          : QStringLiteral("%1: %2: %3").arg(i.environment, i.path, i.message));
        later(Error { lines.join(u'\n') });
        return;
    }
    // The file, once the secrets are safe: a keychain that refuses leaves it
    // as it was.
    const auto write = [request, json]() -> Outcome {
        if (request.keepBroken && QFileInfo::exists(request.path)) {
            const QString backup = request.path + QStringLiteral(".broken");
            QFile::remove(backup);
            if (!QFile::copy(request.path, backup))
                return Error { QStringLiteral("could not keep the old file as %1").arg(backup) };
        }
        return saveEnvironmentsFile(request.path, json);
    };
    if (request.secrets.isEmpty()) {
        later(write());
        return;
    }
    auto pending = std::make_shared<int>(int(request.secrets.size()));
    auto failed = std::make_shared<QStringList>();
    QPointer<QObject> ctx(context);
    for (auto it = request.secrets.cbegin(); it != request.secrets.cend(); ++it) {
        writeSecret(it.key(), it.value(), context,
                    [pending, failed, key = it.key(), write, done, ctx](Outcome r) {
                        if (!r)
                            *failed << QStringLiteral("%1: %2").arg(key, r.error());
                        if (--*pending > 0 || !ctx)
                            return;
                        if (!failed->isEmpty()) {
                            done(
                                Error { QStringLiteral("the keychain did not take the secrets:\n%1")
                                            .arg(failed->join(u'\n')) });
                            return;
                        }
                        done(write());
                    });
    }
}

} // namespace pilothouse
