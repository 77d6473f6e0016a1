#pragma once

#include "core/result.h"
#include "deploy/history.h"
#include "drivers/docker.h"
#include "env/environment.h"

#include <QMap>
#include <QObject>
#include <QPointer>
#include <QStringList>
#include <QTemporaryDir>
#include <functional>
#include <memory>

// Builds the backend's image from the checkout a compose environment's files
// live in, as `docker compose build` does, and tags it by what it was built
// from: `sha-<commit>` for a clean tree, `sha-<commit>-dirty-<changes>` when
// files differ from the commit (<changes>: the start of the git tree id of
// the working tree, so the same edits give the same tag and different ones
// never overwrite each other). Every build is a rollback point of an
// environment whose tags come from the engine (image.source "engine").
namespace pilothouse {

// ---- Pure parts (tests/model/tst_localbuild.cpp)

// "sha-<commit>" or "sha-<commit>-dirty-<first 12 of changes>".
QString buildTag(const QString &commit, const QString &changes = {});
// Whether a tag names a local build of a commit (and which).
bool isBuildTag(const QString &tag, QString *commit = nullptr, bool *dirty = nullptr);
// The schema version a checkout's deckhand expects: the highest numbered
// migration (NNNN_name.sql) of services/deckhand/migrations/postgres; -1 none.
int checkoutSchema(const QStringList &migrationFileNames);

// Follows a build's output: the step it is in (classic builder "Step 3/12 :
// RUN ...", BuildKit "#8 [builder 3/6] RUN ..."), and its last lines, for a
// failure's sentence.
class BuildLog
{
public:
    // A line of output; returns the step line when the line starts a step.
    QString add(const QString &line);
    QString step() const { return m_step; }
    QStringList tail() const { return m_tail; }
    // Why the build failed, leading with what to do.
    QString failure(const QString &image, const QString &cause) const;

private:
    QString m_step;
    QStringList m_tail;
};

// ---- The build

class LocalBuild final : public QObject
{
    Q_OBJECT
public:
    // variables: the compose variables the stack runs with (the build sets
    // the repository and tag ones itself).
    LocalBuild(Environment env, QMap<QString, QString> variables, QObject *parent = nullptr);
    ~LocalBuild() override;

    // reuse: an image already on the engine for this exact source is taken
    // as it is (a start); else it is built again (the layer cache keeps that
    // short). `done` gets the build, or why there is none; notACheckout is
    // set when the stack folder is no git checkout (nothing to tag it by).
    struct Failure
    {
        QString message;
        bool notACheckout = false;
        bool cancelled = false;
    };
    using Done = std::function<void(const Build &, const Failure &)>;
    void start(bool reuse, Done done);
    void cancel();

signals:
    void progress(const QString &line);

private:
    void git(const QStringList &args, std::function<void(const CommandResult &)> then,
             const QString &indexFile = {});
    void described();
    void fingerprinted();
    void inspect(std::function<void(bool found)> then);
    void compose();
    void fail(const QString &message, bool notACheckout = false);
    void succeed();

    Environment m_env;
    QMap<QString, QString> m_variables;
    Done m_done;
    bool m_reuse = false;
    bool m_cancelled = false;
    QPointer<Command> m_command;
    Build m_build;
    QString m_commitTime;
    QString m_version;
    QString m_changes;
    std::unique_ptr<QTemporaryDir> m_scratch;
    BuildLog m_log;
};

} // namespace pilothouse
