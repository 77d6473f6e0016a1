#include "deploy/history.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>
#include <QHostInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QStandardPaths>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <pwd.h>
#include <unistd.h>

namespace pilothouse {

QString toString(DeploymentOutcome outcome)
{
    switch (outcome) {
    case Deployment::Outcome::Running:
        return QStringLiteral("running");
    case Deployment::Outcome::Succeeded:
        return QStringLiteral("succeeded");
    case Deployment::Outcome::Failed:
        return QStringLiteral("failed");
    case Deployment::Outcome::Reverted:
        return QStringLiteral("reverted");
    case Deployment::Outcome::Cancelled:
        return QStringLiteral("cancelled");
    case Deployment::Outcome::Interrupted:
        return QStringLiteral("interrupted");
    case Deployment::Outcome::Refused:
        return QStringLiteral("refused");
    }
    return {};
}

std::optional<DeploymentOutcome> outcomeFromString(const QString &text)
{
    for (auto o : { Deployment::Outcome::Running, Deployment::Outcome::Succeeded,
                    Deployment::Outcome::Failed, Deployment::Outcome::Reverted,
                    Deployment::Outcome::Cancelled, Deployment::Outcome::Interrupted }) {
        if (toString(o) == text)
            return o;
    }
    return std::nullopt;
}

namespace {

QString iso(const QDateTime &t)
{
    return t.isValid() ? t.toUTC().toString(Qt::ISODateWithMs) : QString();
}

Error sqlError(const QString &what, const QSqlError &e)
{
    return Error { QStringLiteral("deployment history: %1: %2").arg(what, e.text()) };
}

} // namespace

DeploymentHistory::DeploymentHistory()
{
    static std::atomic<int> counter { 0 };
    m_connection = QStringLiteral("pilothouse-history-%1").arg(++counter);
}

DeploymentHistory::~DeploymentHistory()
{
    close();
}

QString DeploymentHistory::defaultPath()
{
    return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) +
        QStringLiteral("/deployments.db");
}

QString DeploymentHistory::currentUser()
{
    QString user = qEnvironmentVariable("USER");
    if (user.isEmpty())
        user = qEnvironmentVariable("LOGNAME");
    if (user.isEmpty()) {
        // Services and containers often run without USER: ask the system.
        if (const passwd *pw = ::getpwuid(::getuid()); pw && pw->pw_name)
            user = QString::fromLocal8Bit(pw->pw_name);
    }
    if (user.isEmpty())
        user = QStringLiteral("uid%1").arg(::getuid());
    return user + QLatin1Char('@') + QHostInfo::localHostName();
}

Expected<int> DeploymentHistory::open(const QString &path, Mode mode)
{
    close();
    Expected<int> opened = openFile(path, mode);
    if (opened) {
        m_openError.clear();
    } else {
        close(); // nothing half set up stays usable
        m_openError = opened.error();
    }
    return opened;
}

Error DeploymentHistory::notOpen() const
{
    // Say why, when an open failed: that is what the person can fix.
    return Error { m_openError.isEmpty() ? QStringLiteral("deployment history is not open")
                                         : m_openError };
}

Expected<int> DeploymentHistory::openFile(const QString &path, Mode mode)
{
    if (!QDir().mkpath(QFileInfo(path).absolutePath()))
        return Error { QStringLiteral("deployment history: cannot create %1")
                           .arg(QFileInfo(path).absolutePath()) };
    QSqlDatabase db = QSqlDatabase::addDatabase(QStringLiteral("QSQLITE"), m_connection);
    db.setDatabaseName(path);
    db.setConnectOptions(QStringLiteral("QSQLITE_BUSY_TIMEOUT=5000"));
    if (!db.open())
        return sqlError(QStringLiteral("cannot open %1").arg(path), db.lastError());
    QSqlQuery q(db);
    // WAL: a reader never blocks the writer, and a crash never tears a committed row.
    for (const char *pragma : { "PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL",
                                "PRAGMA foreign_keys = ON" }) {
        if (!q.exec(QString::fromLatin1(pragma)))
            return sqlError(QString::fromLatin1(pragma), q.lastError());
    }
    if (!q.exec(QStringLiteral(
            "CREATE TABLE IF NOT EXISTS deployments ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " environment TEXT NOT NULL, service TEXT NOT NULL,"
            " from_tag TEXT, from_digest TEXT, to_tag TEXT NOT NULL, to_digest TEXT,"
            " who TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,"
            " outcome TEXT NOT NULL CHECK (outcome IN ('running','succeeded','failed','reverted',"
            "'cancelled','interrupted')),"
            " reason TEXT, log_lines TEXT, owner TEXT)")) ||
        !q.exec(QStringLiteral(
            "CREATE INDEX IF NOT EXISTS deployments_env_idx ON deployments (environment, id)")) ||
        !q.exec(QStringLiteral(
            "CREATE TABLE IF NOT EXISTS builds ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " environment TEXT NOT NULL, repository TEXT NOT NULL, tag TEXT NOT NULL,"
            " git_commit TEXT NOT NULL, dirty INTEGER NOT NULL, image_id TEXT NOT NULL,"
            " built_at TEXT NOT NULL, schema_version INTEGER, who TEXT NOT NULL,"
            " UNIQUE (repository, tag))")))
        return sqlError(QStringLiteral("cannot create the tables"), q.lastError());
    // Columns added after the first format; a reader never adds them.
    QStringList columns;
    if (!q.exec(QStringLiteral("PRAGMA table_info(deployments)")))
        return sqlError(QStringLiteral("cannot read the table's columns"), q.lastError());
    while (q.next())
        columns << q.value(1).toString();
    m_hasSchemaColumns = columns.contains(QLatin1String("to_schema"));
    m_hasStrategyColumn = columns.contains(QLatin1String("strategy"));
    if (mode == Mode::Reader)
        return 0;
    if (!m_hasSchemaColumns) {
        if (!q.exec(QStringLiteral("ALTER TABLE deployments ADD COLUMN from_schema INTEGER")) ||
            !q.exec(QStringLiteral("ALTER TABLE deployments ADD COLUMN to_schema INTEGER")))
            return sqlError(QStringLiteral("cannot add the schema columns"), q.lastError());
        m_hasSchemaColumns = true;
    }
    if (!m_hasStrategyColumn) {
        if (!q.exec(QStringLiteral("ALTER TABLE deployments ADD COLUMN strategy TEXT")))
            return sqlError(QStringLiteral("cannot add the strategy column"), q.lastError());
        m_hasStrategyColumn = true;
    }
    // A "running" row whose writer (host:pid) is gone was interrupted. One on
    // another host, or whose process lives, is left alone: it may be running.
    if (!q.exec(QStringLiteral("SELECT id, owner FROM deployments WHERE outcome = 'running'")))
        return sqlError(QStringLiteral("cannot read running deployments"), q.lastError());
    QList<qint64> dead;
    const QString host = QHostInfo::localHostName();
    while (q.next()) {
        const QString owner = q.value(1).toString();
        const qsizetype colon = owner.lastIndexOf(QLatin1Char(':'));
        const qint64 pid = owner.mid(colon + 1).toLongLong();
        if (owner.left(colon) == host && pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH)
            dead << q.value(0).toLongLong();
    }
    for (qint64 id : dead) {
        q.prepare(QStringLiteral("UPDATE deployments SET outcome = 'interrupted', finished_at = ?, "
                                 "reason = 'the panel stopped during this deployment' "
                                 "WHERE id = ? AND outcome = 'running'"));
        q.addBindValue(iso(QDateTime::currentDateTimeUtc()));
        q.addBindValue(id);
        if (!q.exec())
            return sqlError(QStringLiteral("cannot mark interrupted deployments"), q.lastError());
    }
    return int(dead.size());
}

void DeploymentHistory::close()
{
    if (QSqlDatabase::contains(m_connection)) {
        QSqlDatabase::database(m_connection, false).close();
        QSqlDatabase::removeDatabase(m_connection);
    }
}

Expected<qint64> DeploymentHistory::begin(const Deployment &d)
{
    QSqlDatabase db = QSqlDatabase::database(m_connection, false);
    if (!db.isOpen())
        return notOpen();
    QSqlQuery q(db);
    q.prepare(QStringLiteral(
        "INSERT INTO deployments (environment, service, from_tag, from_digest, to_tag, to_digest, "
        "who, started_at, owner, from_schema, strategy, outcome) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running')"));
    // The owner (host:pid) tells a later open whether this row's writer still lives.
    for (const QString &v :
         { d.environment, d.service, d.fromTag, d.fromDigest, d.toTag, d.toDigest,
           d.who.isEmpty() ? currentUser() : d.who,
           iso(d.startedAt.isValid() ? d.startedAt : QDateTime::currentDateTimeUtc()),
           QStringLiteral("%1:%2")
               .arg(QHostInfo::localHostName())
               .arg(QCoreApplication::applicationPid()) })
        q.addBindValue(v.isNull() ? QStringLiteral("") : v); // a null QString would bind as NULL
    q.addBindValue(d.fromSchema >= 0 ? QVariant(d.fromSchema) : QVariant());
    q.addBindValue(d.strategy.isEmpty() ? QVariant() : QVariant(d.strategy));
    if (!q.exec())
        return sqlError(QStringLiteral("cannot record the start"), q.lastError());
    return q.lastInsertId().toLongLong();
}

Outcome DeploymentHistory::finish(qint64 id, Deployment::Outcome outcome, const QString &reason,
                                  const QStringList &logLines, int toSchema)
{
    QSqlDatabase db = QSqlDatabase::database(m_connection, false);
    if (!db.isOpen())
        return notOpen();
    if (!db.transaction())
        return sqlError(QStringLiteral("cannot start a transaction"), db.lastError());
    QSqlQuery q(db);
    q.prepare(QStringLiteral(
        "UPDATE deployments SET outcome = ?, reason = ?, log_lines = ?, finished_at = ?, "
        "to_schema = ? WHERE id = ? AND outcome = 'running'"));
    q.addBindValue(toString(outcome));
    q.addBindValue(reason);
    q.addBindValue(QString::fromUtf8(
        QJsonDocument(
            QJsonArray::fromStringList(logLines.mid(std::max<qsizetype>(0, logLines.size() - 50))))
            .toJson(QJsonDocument::Compact)));
    q.addBindValue(iso(QDateTime::currentDateTimeUtc()));
    q.addBindValue(toSchema >= 0 ? QVariant(toSchema) : QVariant());
    q.addBindValue(id);
    if (!q.exec() || q.numRowsAffected() != 1) {
        const QString why = q.lastError().isValid()
            ? q.lastError().text()
            : QStringLiteral("deployment %1 is not running").arg(id);
        db.rollback();
        return Error { QStringLiteral("deployment history: cannot record the end: %1").arg(why) };
    }
    if (!db.commit())
        return sqlError(QStringLiteral("cannot commit"), db.lastError());
    return success();
}

static Deployment fromRow(const QSqlQuery &q)
{
    Deployment d;
    d.id = q.value(0).toLongLong();
    d.environment = q.value(1).toString();
    d.service = q.value(2).toString();
    d.fromTag = q.value(3).toString();
    d.fromDigest = q.value(4).toString();
    d.toTag = q.value(5).toString();
    d.toDigest = q.value(6).toString();
    d.who = q.value(7).toString();
    d.startedAt = QDateTime::fromString(q.value(8).toString(), Qt::ISODateWithMs);
    d.finishedAt = QDateTime::fromString(q.value(9).toString(), Qt::ISODateWithMs);
    d.outcome = outcomeFromString(q.value(10).toString()).value_or(Deployment::Outcome::Failed);
    d.reason = q.value(11).toString();
    d.logLines =
        QJsonDocument::fromJson(q.value(12).toString().toUtf8()).toVariant().toStringList();
    d.fromSchema = q.value(13).isNull() ? -1 : q.value(13).toInt();
    d.toSchema = q.value(14).isNull() ? -1 : q.value(14).toInt();
    d.strategy = q.value(15).toString();
    return d;
}

static QString columns(bool withSchema, bool withStrategy)
{
    return QStringLiteral("id, environment, service, from_tag, from_digest, to_tag, to_digest, "
                          "who, started_at, finished_at, outcome, reason, log_lines, ") +
        (withSchema ? QStringLiteral("from_schema, to_schema") : QStringLiteral("NULL, NULL")) +
        (withStrategy ? QStringLiteral(", strategy") : QStringLiteral(", NULL"));
}

Expected<QList<Deployment>> DeploymentHistory::list(const QString &environment, int limit) const
{
    QSqlDatabase db = QSqlDatabase::database(m_connection, false);
    if (!db.isOpen())
        return notOpen();
    QSqlQuery q(db);
    q.prepare(
        QStringLiteral(
            "SELECT %1 FROM deployments WHERE (? = '' OR environment = ?) ORDER BY id DESC LIMIT ?")
            .arg(columns(m_hasSchemaColumns, m_hasStrategyColumn)));
    // A null QString binds as NULL, and NULL = '' is not true.
    const QString env = environment.isEmpty() ? QStringLiteral("") : environment;
    q.addBindValue(env);
    q.addBindValue(env);
    q.addBindValue(limit);
    if (!q.exec())
        return sqlError(QStringLiteral("cannot read"), q.lastError());
    QList<Deployment> out;
    while (q.next())
        out << fromRow(q);
    return out;
}

Expected<qint64> DeploymentHistory::recordBuild(const Build &b)
{
    QSqlDatabase db = QSqlDatabase::database(m_connection, false);
    if (!db.isOpen())
        return notOpen();
    QSqlQuery q(db);
    q.prepare(QStringLiteral(
        "INSERT OR REPLACE INTO builds (environment, repository, tag, git_commit, dirty, image_id, "
        "built_at, schema_version, who) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    const auto text = [](const QString &v) { return v.isNull() ? QStringLiteral("") : v; };
    q.addBindValue(text(b.environment));
    q.addBindValue(text(b.repository));
    q.addBindValue(text(b.tag));
    q.addBindValue(text(b.commit));
    q.addBindValue(b.dirty ? 1 : 0);
    q.addBindValue(text(b.imageId));
    q.addBindValue(iso(b.builtAt.isValid() ? b.builtAt : QDateTime::currentDateTimeUtc()));
    q.addBindValue(b.schema >= 0 ? QVariant(b.schema) : QVariant());
    q.addBindValue(b.who.isEmpty() ? currentUser() : b.who);
    if (!q.exec())
        return sqlError(QStringLiteral("cannot record the build"), q.lastError());
    return q.lastInsertId().toLongLong();
}

Expected<QList<Build>> DeploymentHistory::builds(const QString &repository, int limit) const
{
    QSqlDatabase db = QSqlDatabase::database(m_connection, false);
    if (!db.isOpen())
        return notOpen();
    QSqlQuery q(db);
    q.prepare(QStringLiteral("SELECT id, environment, repository, tag, git_commit, dirty, "
                             "image_id, built_at, schema_version, who FROM builds "
                             "WHERE repository = ? ORDER BY built_at DESC, id DESC LIMIT ?"));
    q.addBindValue(repository.isNull() ? QStringLiteral("") : repository);
    q.addBindValue(limit);
    if (!q.exec())
        return sqlError(QStringLiteral("cannot read the builds"), q.lastError());
    QList<Build> out;
    while (q.next()) {
        Build b;
        b.id = q.value(0).toLongLong();
        b.environment = q.value(1).toString();
        b.repository = q.value(2).toString();
        b.tag = q.value(3).toString();
        b.commit = q.value(4).toString();
        b.dirty = q.value(5).toInt() != 0;
        b.imageId = q.value(6).toString();
        b.builtAt = QDateTime::fromString(q.value(7).toString(), Qt::ISODateWithMs);
        b.schema = q.value(8).isNull() ? -1 : q.value(8).toInt();
        b.who = q.value(9).toString();
        out << b;
    }
    return out;
}

std::optional<TagAndDigest> previousSuccessful(const QList<Deployment> &rows,
                                               const TagAndDigest &running)
{
    const auto isRunning = [&running](const QString &tag, const QString &digest) {
        return tag == running.tag &&
            (digest.isEmpty() || running.digest.isEmpty() || digest == running.digest);
    };
    for (const Deployment &d : rows) {
        if (d.outcome == Deployment::Outcome::Succeeded && !isRunning(d.toTag, d.toDigest))
            return TagAndDigest { d.toTag, d.toDigest };
    }
    for (const Deployment &d : rows) {
        if (d.outcome == Deployment::Outcome::Succeeded && !d.fromTag.isEmpty() &&
            !isRunning(d.fromTag, d.fromDigest))
            return TagAndDigest { d.fromTag, d.fromDigest };
    }
    return std::nullopt;
}

QString recordedDigest(const QList<Deployment> &rows, const QString &tag)
{
    for (const Deployment &d : rows) {
        if (d.toTag == tag && !d.toDigest.isEmpty() && d.outcome == Deployment::Outcome::Succeeded)
            return d.toDigest;
        if (d.fromTag == tag && !d.fromDigest.isEmpty())
            return d.fromDigest;
    }
    return {};
}

int expectedSchema(const QList<Deployment> &rows, const QString &tag)
{
    for (const Deployment &d : rows) {
        if (d.toTag == tag && d.toSchema >= 0)
            return d.toSchema;
        if (d.fromTag == tag && d.fromSchema >= 0)
            return d.fromSchema;
    }
    return -1;
}

} // namespace pilothouse
