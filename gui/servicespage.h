#pragma once

#include "models/models.h"

#include <QPointer>
#include <QWidget>

class QAction;
class QLabel;
class QSortFilterProxyModel;
class QSpinBox;
class QTableView;
class QTimer;

namespace pilothouse {
class Workspace;
}

namespace pilothouse::gui {

// The services of the shown environment: state, health, image, ports,
// uptime and restarts, with per-service actions on the selected row.
class ServicesPage final : public QWidget
{
    Q_OBJECT
public:
    explicit ServicesPage(QWidget *parent = nullptr);

    void setEnvironment(Workspace *workspace, const QString &environment);
    QTableView *view() const { return m_view; }
    QTableView *nodesView() const { return m_nodesView; }
    NodeModel *nodeModel() const { return m_nodes; }
    ServiceModel *model() const { return m_model; }
    QString selectedService() const;
    void setBusy(bool busy);

signals:
    void showLogsRequested(const QString &service);

private:
    void updateActions();
    void contextMenu(const QPoint &pos);

    QPointer<Workspace> m_workspace;
    QString m_environment;
    ServiceModel *m_model;
    QSortFilterProxyModel *m_proxy;
    QTableView *m_view;
    QLabel *m_stale;
    QAction *m_restart;
    QAction *m_stop;
    QAction *m_start;
    QAction *m_logs;
    // Swarm: replicas of the selected service, and the nodes with their actions.
    QWidget *m_scaleBox;
    QSpinBox *m_replicas;
    QAction *m_scale;
    QWidget *m_nodesBox;
    NodeModel *m_nodes;
    QTableView *m_nodesView;
    QAction *m_drain;
    QAction *m_activate;
    bool m_swarm = false;
    QString m_replicasFor; // the service the spin box shows
    QTimer *m_uptime;
    bool m_busy = false;
};

} // namespace pilothouse::gui
