#include "tray.h"

#include "style.h"

#include <QMenu>
#include <QSystemTrayIcon>

namespace pilothouse::gui {

Tray::Tray(Workspace *workspace, QObject *parent)
    : QObject(parent)
    , m_workspace(workspace)
{
    if (!QSystemTrayIcon::isSystemTrayAvailable())
        return;
    m_icon = new QSystemTrayIcon(this);
    m_menu = new QMenu;
    m_icon->setContextMenu(m_menu);
    connect(m_icon, &QSystemTrayIcon::activated, this,
            [this](QSystemTrayIcon::ActivationReason reason) {
                if (reason == QSystemTrayIcon::Trigger || reason == QSystemTrayIcon::DoubleClick)
                    emit showRequested();
            });
    connect(workspace, &Workspace::healthChanged, this, &Tray::updateStatus);
    connect(workspace, &Workspace::environmentsChanged, this, &Tray::rebuildMenu);
    connect(m_menu, &QMenu::aboutToShow, this, &Tray::rebuildMenu);
    rebuildMenu();
    updateStatus();
    m_icon->show();
}

Tray::~Tray()
{
    delete m_menu;
}

void Tray::rebuildMenu()
{
    if (!m_menu || !m_workspace)
        return;
    // clear() drops the actions, not the submenus it owns.
    for (QMenu *sub : m_menu->findChildren<QMenu *>(Qt::FindDirectChildrenOnly))
        sub->deleteLater();
    m_menu->clear();
    m_menu->addAction(gui::icon("pilothouse"), tr("Show Pilothouse"), this, &Tray::showRequested);
    m_menu->addSeparator();
    for (const Environment &e : m_workspace->environments().environments) {
        const ServiceHealth h = m_workspace->health(e.name);
        QMenu *sub =
            m_menu->addMenu(statusIcon(toneOf(h)), tr("%1 \u2014 %2").arg(e.name, label(h)));
        const QString name = e.name;
        sub->addAction(gui::icon("start"), tr("Start"), this,
                       [this, name] { m_workspace->up(name); });
        sub->addAction(gui::icon("stop"), tr("Stop"), this,
                       [this, name] { m_workspace->down(name); });
        sub->addAction(gui::icon("restart"), tr("Restart"), this,
                       [this, name] { m_workspace->restart(name); });
    }
    m_menu->addSeparator();
    m_menu->addAction(tr("Quit"), this, &Tray::quitRequested);
}

void Tray::updateStatus()
{
    if (!m_icon || !m_workspace)
        return;
    const ServiceHealth h = m_workspace->overallHealth();
    m_icon->setIcon(statusIcon(toneOf(h)));
    QStringList lines { tr("Pilothouse") };
    for (const Environment &e : m_workspace->environments().environments)
        lines << tr("%1: %2").arg(e.name, label(m_workspace->health(e.name)));
    m_icon->setToolTip(lines.join(QLatin1Char('\n')));
}

bool Tray::notify(const Notice &n)
{
    if (!m_icon || !m_icon->isVisible() || !QSystemTrayIcon::supportsMessages())
        return false;
    const bool bad = n.bad();
    m_icon->showMessage(n.title, n.text,
                        bad ? QSystemTrayIcon::Warning : QSystemTrayIcon::Information, 8000);
    return true;
}

} // namespace pilothouse::gui
