#pragma once

#include "core/workspace.h"

#include <QObject>
#include <QPointer>

class QMenu;
class QSystemTrayIcon;

namespace pilothouse::gui {

// The tray icon: the worst status of the watched environments, a menu to show
// the window or start and stop an environment, and desktop notifications.
// Without a tray (some desktops, offscreen tests) it does nothing and the
// window carries on alone.
class Tray final : public QObject
{
    Q_OBJECT
public:
    explicit Tray(Workspace *workspace, QObject *parent = nullptr);
    ~Tray() override;

    bool isAvailable() const { return m_icon != nullptr; }
    // Shows a notice as a desktop notification; false when there is no tray.
    bool notify(const Notice &notice);

signals:
    void showRequested();
    void quitRequested();

private:
    void rebuildMenu();
    void updateStatus();

    QPointer<Workspace> m_workspace;
    QSystemTrayIcon *m_icon = nullptr;
    QMenu *m_menu = nullptr;
};

} // namespace pilothouse::gui
