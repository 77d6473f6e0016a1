#pragma once

#include "models/models.h"

#include <QPointer>
#include <QWidget>

class QLabel;
class QSortFilterProxyModel;
class QTableView;
class QTextBrowser;

namespace pilothouse::gui {

// Every health endpoint of the environment: status, latency and its recent
// trend, when it last changed, and the details of the last failed check.
class HealthPage final : public QWidget
{
    Q_OBJECT
public:
    explicit HealthPage(QWidget *parent = nullptr);

    void setMonitor(HealthMonitor *monitor);
    QTableView *view() const { return m_view; }
    QTextBrowser *details() const { return m_details; }

private:
    void showDetails();

    QPointer<HealthMonitor> m_monitor;
    EndpointModel *m_model;
    QSortFilterProxyModel *m_proxy;
    QTableView *m_view;
    QTextBrowser *m_details;
    QLabel *m_empty;
};

} // namespace pilothouse::gui
