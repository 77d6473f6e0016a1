#pragma once

#include <QDateTime>
#include <QJsonObject>
#include <QMetaType>
#include <QString>

// News about an environment, in one vocabulary for the window (its notice
// history, the tray, the status bar) and pilothousectl: what the user asked
// for and got, and what happened by itself.
namespace pilothouse {

struct Notice
{
    enum class Kind {
        Started, // the user's start finished: "started by you"
        Stopped, // "stopped by you"
        Restarted, // "restarted by you"
        ActionFailed, // a start, stop or restart the user asked for failed
        Crashed, // a service died; its supervisor or the engine restarts it
        Unhealthy, // healthy before, failing its checks now
        Recovered, // healthy again after failing
        DeploymentSucceeded, // "deployment ended", well
        DeploymentFailed, // "deployment ended", reverted or failed
        BackupSucceeded, // "backup ended", verified
        BackupFailed, // "backup ended", with why not
        RestoreSucceeded, // "restore ended"
        RestoreFailed, // "restore ended", with why not
        Info, // the panel about itself
    };
    Kind kind = Kind::Info;
    QString environment;
    QString title;
    QString text;
    QDateTime at = QDateTime::currentDateTimeUtc();

    // The user asked for it: not news to announce, but part of the story.
    bool byUser() const;
    // Something to look at (shown as a warning).
    bool bad() const;
};

// The vocabulary: "started by you", "crashed", "recovered", "deployment ended"...
QString toString(Notice::Kind kind);
// {"at", "environment", "kind", "bad", "title", "text"}
QJsonObject toJson(const Notice &notice);
// One line for a terminal: "14:02:11 local  crashed  deckhand in local crashed ... - why".
QString toLine(const Notice &notice);

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::Notice)
