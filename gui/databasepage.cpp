#include "databasepage.h"

#include "style.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QTableView>
#include <QVBoxLayout>

namespace pilothouse::gui {

DatabasePage::DatabasePage(QWidget *parent)
    : QWidget(parent)
    , m_model(new DatabaseModel(this))
    , m_view(new QTableView(this))
    , m_status(new QLabel(this))
    , m_checked(new QLabel(this))
    , m_refresh(new QPushButton(icon("refresh"), tr("&Refresh"), this))
{
    m_view->setTabKeyNavigation(false); // Tab leaves the table; arrows move in it
    m_view->setModel(m_model);
    m_view->setObjectName(QStringLiteral("databaseView"));
    m_view->setAccessibleName(tr("Database facts"));
    m_view->verticalHeader()->hide();
    m_view->horizontalHeader()->setStretchLastSection(true);
    m_view->setColumnWidth(DatabaseModel::Fact, 200);
    m_view->setAlternatingRowColors(true);
    m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_status->setObjectName(QStringLiteral("databaseStatus"));
    m_status->setWordWrap(true);
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_refresh->setObjectName(QStringLiteral("databaseRefresh"));
    m_refresh->setToolTip(tr("Probe the database again"));

    auto *top = new QHBoxLayout;
    top->addWidget(m_status, 1);
    top->addWidget(m_checked);
    top->addWidget(m_refresh);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 4, 0, 0);
    layout->addLayout(top);
    layout->addWidget(m_view);
    connect(m_refresh, &QPushButton::clicked, this, &DatabasePage::refresh);
}

void DatabasePage::setSession(StackSession *session)
{
    if (m_connection)
        disconnect(m_connection);
    m_session = session;
    DatabaseProbe *probe = session ? session->databaseProbe() : nullptr;
    m_refresh->setEnabled(probe != nullptr);
    if (!probe) {
        m_model->setFacts({});
        m_status->setText(tr("This environment has no database to probe. Add one "
                             "(\"database\": {\"dsn\": ...}) in Settings."));
        m_checked->clear();
        return;
    }
    m_connection = connect(session, &StackSession::databaseChanged, this, &DatabasePage::show);
    if (probe->facts().checkedAt.isValid()) {
        show(probe->facts());
    } else {
        m_model->setFacts({});
        m_status->setText(
            tr("%1: not probed yet").arg(session->environment().database->displayDsn()));
        m_checked->clear();
    }
}

void DatabasePage::refresh()
{
    DatabaseProbe *probe = m_session ? m_session->databaseProbe() : nullptr;
    if (!probe || probe->isBusy())
        return;
    m_refresh->setEnabled(false);
    m_checked->setText(tr("probing..."));
    probe->probe();
}

void DatabasePage::show(const DatabaseFacts &f)
{
    m_refresh->setEnabled(true);
    m_model->setFacts(f);
    const Tone tone = f.reachable() ? Tone::Good : Tone::Bad;
    const QString detail = f.reachable() ? QStringLiteral("%1 %2 \u00b7 %3 ms")
                                               .arg(f.engine, f.serverVersion)
                                               .arg(f.latencyMs, 0, 'f', 2)
                                         : f.error;
    m_status->setText(QStringLiteral("<b style='color:%1'>%2</b> %3")
                          .arg(colourOf(tone).name(),
                               f.reachable() ? tr("reachable") : tr("not reachable"),
                               detail.toHtmlEscaped()));
    m_checked->setText(
        tr("checked %1")
            .arg(QLocale().toString(f.checkedAt.toLocalTime().time(), QLocale::LongFormat)));
}

} // namespace pilothouse::gui
