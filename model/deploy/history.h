#pragma once

#include "core/result.h"

#include <QDateTime>
#include <QList>
#include <QString>
#include <QStringList>
#include <optional>

// The deployment history: one SQLite file (WAL) under AppDataLocation. A
// deployment is written as it starts (outcome "running") and completed in one
// transaction when it ends, so a panel killed in between loses no earlier row,
// and the next open marks the unfinished one "interrupted".
namespace pilothouse {

// One vocabulary for how a deployment ended, for the history, the deployer's
// answer, the window and pilothousectl alike.
enum class DeploymentOutcome {
    Running, // recorded, not ended yet
    Succeeded, // the new tag runs and passed the gate
    Failed, // the new tag failed and so did the revert (or the deployment broke off)
    Reverted, // the new tag failed the gate; the previous one runs again
    Cancelled, // stopped on request; the previous tag runs
    Interrupted, // the panel died while it ran (found by the next open)
    Refused // nothing was changed (bad tag, busy, registry unreachable, ...); never recorded
};
QString toString(DeploymentOutcome outcome);
std::optional<DeploymentOutcome> outcomeFromString(const QString &text);

struct Deployment
{
    using Outcome = DeploymentOutcome;

    qint64 id = 0;
    QString environment;
    QString service; // the services the image runs in, "api,worker" (older rows: one)
    QString fromTag;
    QString fromDigest;
    QString toTag;
    QString toDigest;
    QString who; // user@host
    QDateTime startedAt;
    QDateTime finishedAt;
    Outcome outcome = Outcome::Running;
    QString reason;
    QStringList logLines; // the last lines of a failure
    // The schema version each build expects (deckhand's /version), -1 unknown:
    // a later rollback compares it with the database's.
    int fromSchema = -1;
    int toSchema = -1;
    // How the services were moved ("recreate", "start-first"); empty in rows
    // from before it was recorded.
    QString strategy;
};

// One image built here from a checkout (pilothousectl build, the window's
// Build): a rollback point of an environment whose tags come from the engine.
// Its identity is the image id (a local build has no registry digest).
struct Build
{
    qint64 id = 0;
    QString environment;
    QString repository; // ghcr.io/pilothouse/deckhand
    QString tag; // sha-<commit> or sha-<commit>-dirty-<changes>
    QString commit; // 40 hex
    bool dirty = false; // built from uncommitted changes
    QString imageId; // sha256:...
    QDateTime builtAt;
    int schema = -1; // the schema version the build expects; -1 unknown
    QString who;
};

// What a rollback reads from one service's rows (newest first).
struct TagAndDigest
{
    QString tag;
    QString digest; // may be empty: not recorded
};
// The previous successful deployment: the newest succeeded one that is not
// what runs now, else what the newest succeeded one replaced.
std::optional<TagAndDigest> previousSuccessful(const QList<Deployment> &rows,
                                               const TagAndDigest &running);
// The digest a tag ran with here (the newest record of it), or empty.
QString recordedDigest(const QList<Deployment> &rows, const QString &tag);
// The schema version a tag's build expects, as recorded when it ran; -1 unknown.
int expectedSchema(const QList<Deployment> &rows, const QString &tag);

class DeploymentHistory final
{
public:
    DeploymentHistory();
    ~DeploymentHistory();
    DeploymentHistory(const DeploymentHistory &) = delete;
    DeploymentHistory &operator=(const DeploymentHistory &) = delete;

    static QString defaultPath(); // AppDataLocation/deployments.db

    // Opens (creating if need be). A writer also marks deployments left
    // "running" by a process that no longer exists as interrupted, and returns
    // how many; a reader (pilothousectl history) changes nothing.
    enum class Mode { Writer, Reader };
    Expected<int> open(const QString &path, Mode mode = Mode::Writer);
    void close();

    // Records the start; returns the new row's id.
    Expected<qint64> begin(const Deployment &d);
    Outcome finish(qint64 id, Deployment::Outcome outcome, const QString &reason,
                   const QStringList &logLines = {}, int toSchema = -1);
    // Newest first; environment empty: all.
    Expected<QList<Deployment>> list(const QString &environment = {}, int limit = 100) const;

    // Records a build; a build of the same repository and tag replaces the
    // older row (the same sources built again).
    Expected<qint64> recordBuild(const Build &b);
    // The builds of a repository, newest first.
    Expected<QList<Build>> builds(const QString &repository, int limit = 200) const;
    // "user@host" of this process.
    static QString currentUser();

private:
    Expected<int> openFile(const QString &path, Mode mode);
    Error notOpen() const;

    QString m_connection;
    QString m_openError; // why the last open() failed
    bool m_hasSchemaColumns = false; // a file from before they were added, opened to read
    bool m_hasStrategyColumn = false;
};

} // namespace pilothouse
