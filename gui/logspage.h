#pragma once

#include "models/models.h"

#include <QPointer>
#include <QWidget>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListView;
class QSortFilterProxyModel;

namespace pilothouse::gui {

// Live logs per service: follow, search, level colours, copy. Memory stays
// bounded however long it runs (the store and this view keep the newest lines).
class LogsPage final : public QWidget
{
    Q_OBJECT
public:
    explicit LogsPage(QWidget *parent = nullptr);

    void setSession(StackSession *session);
    void showService(const QString &service);
    void focusSearch();
    void copySelection() const;
    // The page is shown or hidden: compose logs are followed only while shown.
    void setActive(bool active);

    QListView *view() const { return m_view; }
    QLineEdit *search() const { return m_search; }
    QComboBox *services() const { return m_services; }
    QCheckBox *follow() const { return m_follow; }
    LogModel *model() const { return m_model; }
    QSortFilterProxyModel *filtered() const { return m_proxy; }

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void reloadServices();
    void sourceChanged();
    void scrollIfFollowing();

    QPointer<StackSession> m_session;
    QList<QMetaObject::Connection> m_connections;
    LogModel *m_model;
    QSortFilterProxyModel *m_proxy;
    QListView *m_view;
    QComboBox *m_services;
    QCheckBox *m_follow;
    QLineEdit *m_search;
    QLabel *m_count;
    QLabel *m_ended;
    bool m_active = false;
};

} // namespace pilothouse::gui
