#pragma once

#include "core/notice.h"
#include "core/session.h"
#include "deploy/deployer.h"

#include <QHash>
#include <QObject>
#include <QTimer>
#include <memory>
#include <optional>

// Everything the window shows, for every environment at once: the
// environments file, a session per environment (made when first needed), a
// deployer for those that deploy images, the deployment history, the last
// known state of each environment (so a new window shows it before anything
// answers), the native ownership of local processes, and the events worth a
// notification. The window displays this and forwards clicks; it decides nothing.
namespace pilothouse {

class HistoryStore;
class NativeControlServer;

// What an environment looked like when last seen, kept across runs.
struct Snapshot
{
    QDateTime at;
    ServiceHealth health = ServiceHealth::Unknown;
    QList<ServiceRow> rows;
};

QJsonObject toJson(const ServiceRow &row);
ServiceRow serviceRowFromJson(const QJsonObject &o);

class Workspace final : public QObject
{
    Q_OBJECT
public:
    // The window keeps the last known state of each environment across runs;
    // pilothousectl neither reads nor writes it.
    enum class Face { Window, Command };
    explicit Workspace(Face face = Face::Window, QObject *parent = nullptr);
    ~Workspace() override;

    // Reads and validates the environments (an explicit path wins, then the
    // user's file, then the built-in one). On error nothing changes.
    Outcome load(const QString &explicitPath = {});
    // When that file is broken: the built-in environments meanwhile, while
    // the file asked for stays the one that settings save to and reload reads.
    Outcome loadBuiltInInstead();
    // After the settings dialog saved: reload the file asked for, keeping what runs.
    Outcome reload();
    const EnvironmentSet &environments() const { return m_set; }
    QString configPath() const { return m_path; }
    // The raw text of that file, for editing (the built-in one when no user file).
    QByteArray configText() const { return m_text; }
    bool isBuiltIn() const { return m_path.startsWith(QLatin1Char(':')); }
    // Where settings are saved: the explicit --config file, else the user's file.
    QString editablePath() const;
    // The built-in environments are shown because the file asked for was broken.
    bool isFallback() const { return m_fallback; }

    // Made on first use; stays until the environment is removed.
    StackSession *session(const QString &environment);
    // Deployments of the backend image (compose environments with an image); else null.
    Deployer *deployer(const QString &environment);
    HistoryStore *history() const { return m_history.get(); }
    // Opens the deployment history (once; calls made meanwhile wait for it).
    void openHistory();

    // Native environments another process owns: their states are asked for
    // every 2 s (startLive() does it too), so their news reaches this process.
    void followOwners();
    // Live data starts here, not in the constructor: the window asks after its
    // first paint. Local environments are watched in the background too (the
    // tray's status); remote ones only while shown.
    void startLive(const QString &shown);
    void show(const QString &environment);
    bool isLive() const { return m_live; }
    // The environment's session has reported since watching began.
    bool hasLiveData(const QString &environment) const;

    // Stack actions for the window, the tray and pilothousectl. A native
    // environment is owned by whoever starts it; one owned elsewhere is
    // steered through its owner. A compose start keeps the tag deployed last.
    void up(const QString &environment);
    void down(const QString &environment);
    // Builds the backend image from the checkout and records it (compose).
    void build(const QString &environment);
    void restart(const QString &environment, const QString &service = {});
    void stopService(const QString &environment, const QString &service);
    void startService(const QString &environment, const QString &service);
    void cancel(const QString &environment);
    // Asks who owns a native environment's processes now (its owner socket),
    // and shows the states that owner reports; `then` runs once it is known.
    void refreshOwner(const QString &environment, std::function<void()> then = {});
    // Who owns a native environment's processes: empty when this window does or none runs.
    QString nativeOwner(const QString &environment) const { return m_owners.value(environment); }

    Snapshot snapshot(const QString &environment) const { return m_snapshots.value(environment); }
    ServiceHealth health(const QString &environment) const;
    // The worst of all watched environments, for the tray.
    ServiceHealth overallHealth() const;
    void saveSnapshots() const;
    static QString snapshotPath();

    // Stops what this window started (native processes), for a clean exit.
    void shutdown();
    bool hasRunningNative() const;
    bool hasRunningDeployment() const;

signals:
    void environmentsChanged();
    void healthChanged(const QString &environment, pilothouse::ServiceHealth health);
    void notice(const pilothouse::Notice &notice);
    void operationStarted(const QString &environment, pilothouse::StackOperation operation,
                          const QString &service);
    void operationProgress(const QString &environment, const QString &message);
    void operationFinished(const QString &environment, const pilothouse::OperationResult &result);
    void shutdownFinished();

private:
    struct Entry;
    Entry *entry(const QString &environment);
    void watch(const QString &environment);
    void evaluate(const QString &environment);
    // The notice a finished start, stop or restart makes, if any.
    static std::optional<Notice> noticeOf(const QString &environment, const OperationResult &r);
    void pollOwner(const QString &environment, std::function<void()> then = {});
    void loadSnapshots();
    void forward(const QString &environment, StackOperation op, const QString &service,
                 const std::function<void(StackSession *)> &local);

    Face m_face = Face::Window;
    bool m_historyOpening = false;
    EnvironmentSet m_set;
    QString m_explicitPath;
    QString m_path;
    QByteArray m_text;
    std::unique_ptr<HistoryStore> m_history;
    QHash<QString, std::shared_ptr<Entry>> m_entries;
    QHash<QString, Snapshot> m_snapshots;
    QHash<QString, QString> m_owners; // native environment -> "pilothousectl (pid 42)"
    QString m_shown;
    QTimer m_ownerPoll;
    QTimer m_snapshotTimer;
    bool m_live = false;
    bool m_fallback = false;
};

} // namespace pilothouse
