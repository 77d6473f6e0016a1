#include "logspage.h"

#include "delegates.h"

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QPushButton>
#include <QScrollBar>
#include <QSortFilterProxyModel>
#include <QVBoxLayout>

namespace pilothouse::gui {

LogsPage::LogsPage(QWidget *parent)
    : QWidget(parent)
    , m_model(new LogModel(this))
    , m_proxy(new QSortFilterProxyModel(this))
    , m_view(new QListView(this))
    , m_services(new QComboBox(this))
    , m_follow(new QCheckBox(tr("&Follow"), this))
    , m_search(new QLineEdit(this))
    , m_count(new QLabel(this))
    , m_ended(new QLabel(this))
{
    m_proxy->setSourceModel(m_model);
    m_proxy->setFilterCaseSensitivity(Qt::CaseInsensitive);
    m_view->setModel(m_proxy);
    m_view->setObjectName(QStringLiteral("logsView"));
    m_view->setAccessibleName(tr("Log lines"));
    m_view->setUniformItemSizes(true); // a long log stays cheap to lay out
    m_view->setSelectionMode(QAbstractItemView::ExtendedSelection);
    m_view->setItemDelegate(new LogLineDelegate(m_view));
    m_view->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_view->installEventFilter(this);
    m_services->setObjectName(QStringLiteral("logService"));
    m_services->setAccessibleName(tr("Service"));
    m_services->setMinimumContentsLength(14);
    m_follow->setChecked(true);
    m_follow->setObjectName(QStringLiteral("logFollow"));
    m_follow->setToolTip(tr("Keep the newest line in view"));
    m_search->setObjectName(QStringLiteral("logSearch"));
    m_search->setPlaceholderText(tr("Filter lines (Ctrl+F)"));
    m_search->setClearButtonEnabled(true);
    m_search->setAccessibleName(tr("Filter log lines"));
    auto *copy = new QPushButton(tr("&Copy"), this);
    copy->setToolTip(tr("Copy the selected lines (Ctrl+C), or all shown lines"));
    auto *clear = new QPushButton(tr("C&lear"), this);
    clear->setToolTip(tr("Clear this view (the service keeps running)"));
    m_ended->setWordWrap(true);
    m_ended->hide();

    auto *bar = new QHBoxLayout;
    auto *serviceLabel = new QLabel(tr("&Service:"), this);
    serviceLabel->setBuddy(m_services);
    bar->addWidget(serviceLabel);
    bar->addWidget(m_services);
    bar->addWidget(m_search, 1);
    bar->addWidget(m_follow);
    bar->addWidget(copy);
    bar->addWidget(clear);
    bar->addWidget(m_count);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 4, 0, 0);
    layout->addLayout(bar);
    layout->addWidget(m_ended);
    layout->addWidget(m_view);
    setTabOrder(m_services, m_search);
    setTabOrder(m_search, m_follow);
    setTabOrder(m_follow, m_view);

    connect(m_search, &QLineEdit::textChanged, m_proxy,
            &QSortFilterProxyModel::setFilterFixedString);
    connect(m_services, &QComboBox::currentIndexChanged, this, &LogsPage::sourceChanged);
    connect(copy, &QPushButton::clicked, this, &LogsPage::copySelection);
    connect(clear, &QPushButton::clicked, m_model, &LogModel::clear);
    connect(m_follow, &QCheckBox::toggled, this, [this](bool on) {
        if (on)
            m_view->scrollToBottom();
    });
    connect(m_proxy, &QAbstractItemModel::rowsInserted, this, &LogsPage::scrollIfFollowing);
    connect(m_proxy, &QAbstractItemModel::modelReset, this, &LogsPage::scrollIfFollowing);
    // Scrolling up to read stops following; back at the bottom, it follows again.
    connect(m_view->verticalScrollBar(), &QScrollBar::valueChanged, this, [this](int v) {
        QScrollBar *scroll = m_view->verticalScrollBar();
        if (scroll->isSliderDown())
            m_follow->setChecked(v == scroll->maximum());
    });
}

void LogsPage::setSession(StackSession *session)
{
    for (const auto &c : std::as_const(m_connections))
        disconnect(c);
    m_connections.clear();
    if (m_session && m_active)
        m_session->stopFollowingLogs();
    m_session = session;
    m_ended->hide();
    if (session) {
        m_connections << connect(session->logs(), &LogStore::appended, this,
                                 [this](const QString &service) {
                                     if (m_services->findData(service) < 0)
                                         reloadServices();
                                 });
        m_connections << connect(session, &StackSession::logsEnded, this,
                                 [this](const QString &error) {
                                     m_ended->setVisible(!error.isEmpty());
                                     m_ended->setText(tr("Log stream ended: %1").arg(error));
                                 });
        m_connections << connect(session, &StackSession::servicesChanged, this,
                                 &LogsPage::reloadServices);
    }
    reloadServices();
    sourceChanged();
    if (m_active && session)
        session->followLogs();
}

void LogsPage::setActive(bool active)
{
    if (active == m_active)
        return;
    m_active = active;
    if (!m_session)
        return;
    if (active)
        m_session->followLogs();
    else
        m_session->stopFollowingLogs();
}

void LogsPage::reloadServices()
{
    const QString current = m_services->currentData().toString();
    QStringList names;
    if (m_session) {
        for (const ServiceRow &r : m_session->services())
            names << r.state.service;
        for (const QString &s : m_session->logs()->services()) {
            if (!names.contains(s))
                names << s;
        }
    }
    names.sort();
    QStringList have;
    for (int i = 1; i < m_services->count(); ++i)
        have << m_services->itemData(i).toString();
    if (have == names && m_services->count() > 0)
        return;
    const QSignalBlocker block(m_services);
    m_services->clear();
    m_services->addItem(tr("All services"), QString());
    for (const QString &n : names)
        m_services->addItem(n, n);
    const int keep = m_services->findData(current);
    m_services->setCurrentIndex(keep >= 0 ? keep : 0);
    if (keep < 0 && !current.isEmpty())
        sourceChanged(); // the shown service is gone: show all, for real
}

void LogsPage::sourceChanged()
{
    m_model->setSource(m_session ? m_session->logs() : nullptr,
                       m_services->currentData().toString());
    m_count->setText(tr("the newest %n lines are kept", nullptr, int(m_model->capacity())));
}

void LogsPage::showService(const QString &service)
{
    reloadServices();
    const int i = m_services->findData(service);
    if (i >= 0)
        m_services->setCurrentIndex(i);
}

void LogsPage::focusSearch()
{
    m_search->setFocus(Qt::ShortcutFocusReason);
    m_search->selectAll();
}

void LogsPage::copySelection() const
{
    QModelIndexList rows = m_view->selectionModel()->selectedIndexes();
    std::sort(rows.begin(), rows.end(),
              [](const QModelIndex &a, const QModelIndex &b) { return a.row() < b.row(); });
    QStringList lines;
    if (rows.isEmpty()) {
        for (int i = 0; i < m_proxy->rowCount(); ++i)
            lines << m_proxy->index(i, 0).data().toString();
    } else {
        for (const QModelIndex &i : rows)
            lines << i.data().toString();
    }
    QApplication::clipboard()->setText(lines.join(QLatin1Char('\n')));
}

void LogsPage::scrollIfFollowing()
{
    if (m_follow->isChecked())
        m_view->scrollToBottom();
}

bool LogsPage::eventFilter(QObject *watched, QEvent *event)
{
    if (watched == m_view && event->type() == QEvent::KeyPress &&
        static_cast<QKeyEvent *>(event)->matches(QKeySequence::Copy)) {
        copySelection();
        return true;
    }
    return QWidget::eventFilter(watched, event);
}

} // namespace pilothouse::gui
