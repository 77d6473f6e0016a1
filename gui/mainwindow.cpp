#include "mainwindow.h"

#include "databasepage.h"
#include "delegates.h"
#include "deploymentspage.h"
#include "engine/sshconnection.h"
#include "healthpage.h"
#include "logspage.h"
#include "servicespage.h"
#include "settingsdialog.h"
#include "style.h"
#include "tray.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QFile>
#include <QFileDialog>
#include <QFontDatabase>
#include <QGridLayout>
#include <QHeaderView>
#include <QLabel>
#include <QListView>
#include <QMenuBar>
#include <QMessageBox>
#include <QPainter>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QSettings>
#include <QSplitter>
#include <QStatusBar>
#include <QTabWidget>
#include <QTextDocument>
#include <QTime>
#include <QTimer>
#include <QToolBar>
#include <QToolButton>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace pilothouse::gui {

namespace {

// A sidebar row: the name, its kind underneath, the status badge on the right.
class EnvironmentDelegate final : public QStyledItemDelegate
{
public:
    using QStyledItemDelegate::QStyledItemDelegate;

    void paint(QPainter *painter, const QStyleOptionViewItem &option,
               const QModelIndex &index) const override
    {
        QStyleOptionViewItem opt = option;
        initStyleOption(&opt, index);
        opt.text.clear();
        QStyle *style = option.widget ? option.widget->style() : QApplication::style();
        style->drawControl(QStyle::CE_ItemViewItem, &opt, painter, option.widget);
        const auto *model = static_cast<const EnvironmentModel *>(index.model());
        if (const InvalidEnvironment *bad = model->invalidAt(index.row())) {
            paintInvalid(painter, option, *bad);
            return;
        }
        const Environment *env = model->environmentAt(index.row());
        if (!env)
            return;
        const ServiceHealth health = ServiceHealth(index.data(StatusRole).toInt());
        const QRect r = option.rect.adjusted(8, 4, -6, -4);
        const QFontMetrics fm(option.font);
        const QString badge = label(health);
        const int badgeWidth = fm.horizontalAdvance(badge) + fm.height() + 4;
        painter->save();
        const bool selected = option.state & QStyle::State_Selected;
        painter->setPen(
            option.palette.color(selected ? QPalette::HighlightedText : QPalette::Text));
        QFont bold = option.font;
        bold.setBold(true);
        painter->setFont(bold);
        const QRect text(r.left(), r.top(), r.width() - badgeWidth - 6, r.height() / 2);
        painter->drawText(text, Qt::AlignLeft | Qt::AlignVCenter,
                          QFontMetrics(bold).elidedText(env->name, Qt::ElideRight, text.width()));
        QFont small = option.font;
        small.setPointSizeF(small.pointSizeF() * 0.88);
        painter->setFont(small);
        const QString kind = env->kind == EnvironmentKind::Native ? MainWindow::tr("native")
            : env->kind == EnvironmentKind::Swarm
            ? (env->isRemote() ? MainWindow::tr("swarm, remote") : MainWindow::tr("swarm"))
            : (env->isRemote() ? MainWindow::tr("compose, remote") : MainWindow::tr("compose"));
        painter->drawText(QRect(r.left(), r.top() + r.height() / 2, text.width(), r.height() / 2),
                          Qt::AlignLeft | Qt::AlignVCenter, kind);
        painter->setFont(option.font);
        paintBadge(painter, QRect(r.right() - badgeWidth, r.top(), badgeWidth, r.height()),
                   toneOf(health), badge);
        painter->restore();
    }

    // Greyed, with the first line of why underneath and a "not usable" badge.
    static void paintInvalid(QPainter *painter, const QStyleOptionViewItem &option,
                             const InvalidEnvironment &bad)
    {
        const QRect r = option.rect.adjusted(8, 4, -6, -4);
        const QFontMetrics fm(option.font);
        const QString badge = MainWindow::tr("not usable");
        const int badgeWidth = fm.horizontalAdvance(badge) + fm.height() + 4;
        painter->save();
        painter->setPen(option.palette.color(QPalette::Disabled, QPalette::Text));
        const QRect text(r.left(), r.top(), r.width() - badgeWidth - 6, r.height() / 2);
        painter->drawText(text, Qt::AlignLeft | Qt::AlignVCenter,
                          fm.elidedText(bad.name, Qt::ElideRight, text.width()));
        QFont small = option.font;
        small.setPointSizeF(small.pointSizeF() * 0.88);
        painter->setFont(small);
        const QString why = bad.needsStackFolder ? MainWindow::tr("needs its stack folder")
                                                 : bad.reason.section(QLatin1Char('\n'), 0, 0);
        painter->drawText(QRect(r.left(), r.top() + r.height() / 2, text.width(), r.height() / 2),
                          Qt::AlignLeft | Qt::AlignVCenter,
                          QFontMetrics(small).elidedText(why, Qt::ElideRight, text.width()));
        painter->setFont(option.font);
        paintBadge(painter, QRect(r.right() - badgeWidth, r.top(), badgeWidth, r.height()),
                   Tone::Bad, badge);
        painter->restore();
    }

    QSize sizeHint(const QStyleOptionViewItem &option, const QModelIndex &) const override
    {
        const QFontMetrics fm(option.font);
        return QSize(200, fm.height() * 2 + 14);
    }
};

QString statusOfProcessMemory()
{
    QFile f(QStringLiteral("/proc/self/status"));
    if (!f.open(QIODevice::ReadOnly))
        return {};
    QString rss, hwm;
    for (const QByteArray &line : f.readAll().split('\n')) {
        if (line.startsWith("VmRSS:"))
            rss = QString::fromLatin1(line.mid(6).simplified().split(' ').value(0));
        else if (line.startsWith("VmHWM:"))
            hwm = QString::fromLatin1(line.mid(6).simplified().split(' ').value(0));
    }
    return QStringLiteral("rss_kb=%1 hwm_kb=%2").arg(rss, hwm);
}

} // namespace

MainWindow::MainWindow(Workspace *workspace, QWidget *parent)
    : QMainWindow(parent)
    , m_workspace(workspace)
    , m_envModel(new EnvironmentModel(this))
    , m_sidebar(new QListView(this))
    , m_title(new QLabel(this))
    , m_bannerFrame(new QFrame(this))
    , m_banner(new QLabel(m_bannerFrame))
    , m_bannerDetailsButton(new QToolButton(m_bannerFrame))
    , m_bannerCopy(new QToolButton(m_bannerFrame))
    , m_bannerDetails(new QPlainTextEdit(m_bannerFrame))
    , m_tabs(new QTabWidget(this))
    , m_services(new ServicesPage(this))
    , m_health(new HealthPage(this))
    , m_database(new DatabasePage(this))
    , m_logs(new LogsPage(this))
    , m_deployments(new DeploymentsPage(this))
    , m_statusLabel(new QLabel(this))
    , m_busy(new QProgressBar(this))
    , m_tray(new Tray(workspace, this))
{
    setObjectName(QStringLiteral("mainWindow"));
    setWindowIcon(icon("pilothouse"));
    m_envModel->setEnvironments(workspace->environments());
    for (const Environment &e : workspace->environments().environments)
        m_envModel->setStatus(e.name, workspace->health(e.name));
    m_sidebar->setModel(m_envModel);
    m_sidebar->setModelColumn(EnvironmentModel::Name);
    m_sidebar->setItemDelegate(new EnvironmentDelegate(m_sidebar));
    m_sidebar->setObjectName(QStringLiteral("environments"));
    m_sidebar->setAccessibleName(tr("Environments"));
    m_sidebar->setMinimumWidth(200);
    m_sidebar->setMaximumWidth(320);
    m_sidebar->setEditTriggers(QAbstractItemView::NoEditTriggers);

    QFont titleFont = m_title->font();
    titleFont.setPointSizeF(titleFont.pointSizeF() * 1.3);
    titleFont.setBold(true);
    m_title->setFont(titleFont);
    m_title->setObjectName(QStringLiteral("environmentTitle"));
    // The banner: what to do first, in a sentence or two; a failed
    // command's own output behind Details, as plain text; both copyable.
    m_bannerFrame->setObjectName(QStringLiteral("bannerFrame"));
    m_banner->setObjectName(QStringLiteral("banner"));
    m_banner->setWordWrap(true);
    m_banner->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_banner->setAccessibleName(tr("Messages"));
    m_bannerDetailsButton->setObjectName(QStringLiteral("bannerDetailsButton"));
    m_bannerDetailsButton->setText(tr("&Details"));
    m_bannerDetailsButton->setCheckable(true);
    m_bannerDetailsButton->setFocusPolicy(Qt::StrongFocus);
    m_bannerDetailsButton->setAccessibleName(tr("Show the command's output"));
    m_bannerDetailsButton->setToolTip(tr("The failed command and everything it printed"));
    m_bannerCopy->setObjectName(QStringLiteral("bannerCopy"));
    m_bannerCopy->setText(tr("Cop&y"));
    m_bannerCopy->setFocusPolicy(Qt::StrongFocus);
    m_bannerCopy->setAccessibleName(tr("Copy the message"));
    m_bannerCopy->setToolTip(tr("Copy the message and the command's output"));
    m_bannerDetails->setObjectName(QStringLiteral("bannerDetails"));
    m_bannerDetails->setReadOnly(true);
    m_bannerDetails->setAccessibleName(tr("Command output"));
    m_bannerDetails->setLineWrapMode(QPlainTextEdit::NoWrap);
    m_bannerDetails->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_bannerDetails->setMaximumHeight(fontMetrics().lineSpacing() * 12);
    m_bannerDetails->hide();
    connect(m_bannerDetailsButton, &QToolButton::toggled, m_bannerDetails, &QWidget::setVisible);
    connect(m_bannerCopy, &QToolButton::clicked, this, [this] {
        QString text = m_banner->text();
        // The label's rich text as a person reads it.
        QTextDocument doc;
        doc.setHtml(text);
        text = doc.toPlainText();
        if (!m_lastErrorDetails.isEmpty())
            text += QStringLiteral("\n\n") + m_lastErrorDetails;
        QGuiApplication::clipboard()->setText(text);
        m_statusLabel->setText(tr("Message copied"));
    });
    auto *bannerLayout = new QGridLayout(m_bannerFrame);
    bannerLayout->setContentsMargins(6, 6, 6, 6);
    bannerLayout->addWidget(m_banner, 0, 0);
    auto *bannerButtons = new QVBoxLayout;
    bannerButtons->addWidget(m_bannerDetailsButton);
    bannerButtons->addWidget(m_bannerCopy);
    bannerButtons->addStretch();
    bannerLayout->addLayout(bannerButtons, 0, 1);
    bannerLayout->addWidget(m_bannerDetails, 1, 0, 1, 2);
    bannerLayout->setColumnStretch(0, 1);
    m_bannerFrame->hide();

    m_tabs->setObjectName(QStringLiteral("pages"));
    m_tabs->addTab(m_services, tr("&Services"));
    m_tabs->addTab(m_health, tr("&Health"));
    m_tabs->addTab(m_database, tr("&Database"));
    m_tabs->addTab(m_logs, icon("logs"), tr("&Logs"));
    m_tabs->addTab(m_deployments, icon("deploy"), tr("De&ployments"));

    auto *main = new QWidget(this);
    auto *mainLayout = new QVBoxLayout(main);
    mainLayout->addWidget(m_title);
    mainLayout->addWidget(m_bannerFrame);
    mainLayout->addWidget(m_tabs, 1);
    auto *split = new QSplitter(this);
    split->setObjectName(QStringLiteral("mainSplitter"));
    split->addWidget(m_sidebar);
    split->addWidget(main);
    split->setStretchFactor(1, 1);
    split->setChildrenCollapsible(false);
    setCentralWidget(split);

    m_busy->setRange(0, 0);
    m_busy->setMaximumWidth(120);
    m_busy->setMaximumHeight(12);
    m_busy->setTextVisible(false);
    m_busy->hide();
    m_statusLabel->setObjectName(QStringLiteral("statusText"));
    statusBar()->addWidget(m_statusLabel, 1);
    statusBar()->addPermanentWidget(m_busy);

    buildActions();
    setTabOrder(m_sidebar, m_tabs);

    connect(m_sidebar->selectionModel(), &QItemSelectionModel::currentRowChanged, this,
            [this](const QModelIndex &current) {
                if (const Environment *e = m_envModel->environmentAt(current.row()))
                    selectEnvironment(e->name);
            });
    connect(workspace, &Workspace::healthChanged, this,
            [this](const QString &env, ServiceHealth h) {
                m_envModel->setStatus(env, h);
                if (env == m_environment)
                    updateTitle();
            });
    connect(workspace, &Workspace::operationStarted, this, &MainWindow::onOperationStarted);
    connect(workspace, &Workspace::operationProgress, this,
            [this](const QString &env, const QString &message) {
                if (env == m_environment)
                    m_statusLabel->setText(message);
            });
    connect(workspace, &Workspace::operationFinished, this, &MainWindow::onOperationFinished);
    connect(workspace, &Workspace::notice, this, &MainWindow::onNotice);
    connect(m_database, &DatabasePage::notice, this, &MainWindow::onNotice);
    connect(workspace, &Workspace::environmentsChanged, this, [this] {
        const QString keep = m_environment;
        m_envModel->setEnvironments(m_workspace->environments());
        for (const Environment &e : m_workspace->environments().environments)
            m_envModel->setStatus(e.name, m_workspace->health(e.name));
        m_environment.clear();
        selectEnvironment(m_workspace->environments().find(keep)
                              ? keep
                              : m_workspace->environments().environments.value(0).name);
    });
    connect(m_services, &ServicesPage::showLogsRequested, this, [this](const QString &service) {
        showPage(Logs);
        m_logs->showService(service);
    });
    connect(m_tabs, &QTabWidget::currentChanged, this,
            [this](int index) { m_logs->setActive(index == Logs); });
    connect(m_deployments, &DeploymentsPage::deploymentFinished, this, &MainWindow::updateActions);
    connect(m_tray, &Tray::showRequested, this, [this] {
        show();
        raise();
        activateWindow();
    });
    connect(m_tray, &Tray::quitRequested, this, &MainWindow::quit);

    restoreSettings();
    // Live data (processes, sockets, databases) only after the first frame is up.
    installEventFilter(this);
}

MainWindow::~MainWindow() = default;

void MainWindow::buildActions()
{
    auto *bar = addToolBar(tr("Stack"));
    bar->setObjectName(QStringLiteral("stackToolBar"));
    bar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    bar->setMovable(false);
    m_start = bar->addAction(icon("start"), tr("&Start"));
    m_stop = bar->addAction(icon("stop"), tr("S&top"));
    m_restart = bar->addAction(icon("restart"), tr("&Restart"));
    m_cancel = bar->addAction(icon("cancel"), tr("&Cancel"));
    bar->addSeparator();
    m_build = bar->addAction(icon("build"), tr("&Build"));
    m_build->setObjectName(QStringLiteral("build"));
    m_build->setShortcut(QKeySequence(tr("Ctrl+Shift+B")));
    m_build->setToolTip(tr("Build the backend image from this checkout, tagged by its commit: "
                           "a rollback point (Ctrl+Shift+B)"));
    connect(m_build, &QAction::triggered, this, [this] { m_workspace->build(m_environment); });
    bar->addSeparator();
    m_refresh = bar->addAction(icon("refresh"), tr("Re&fresh"));
    m_settings = bar->addAction(icon("settings"), tr("Se&ttings..."));
    m_start->setObjectName(QStringLiteral("start"));
    m_stop->setObjectName(QStringLiteral("stop"));
    m_restart->setObjectName(QStringLiteral("restart"));
    m_cancel->setObjectName(QStringLiteral("cancel"));
    m_refresh->setObjectName(QStringLiteral("refresh"));
    m_settings->setObjectName(QStringLiteral("settings"));
    m_start->setShortcut(QKeySequence(tr("Ctrl+Shift+S")));
    m_stop->setShortcut(QKeySequence(tr("Ctrl+Shift+X")));
    m_restart->setShortcut(QKeySequence(tr("Ctrl+Shift+R")));
    m_cancel->setShortcut(QKeySequence(Qt::Key_Escape));
    m_refresh->setShortcut(QKeySequence::Refresh);
    m_settings->setShortcut(QKeySequence(tr("Ctrl+,")));
    m_start->setToolTip(tr("Start the whole stack (Ctrl+Shift+S)"));
    m_stop->setToolTip(tr("Stop the whole stack (Ctrl+Shift+X)"));
    m_restart->setToolTip(tr("Restart the whole stack (Ctrl+Shift+R)"));
    m_cancel->setToolTip(tr("Cancel what is running (Esc)"));
    m_refresh->setToolTip(tr("Check everything again now (F5)"));

    connect(m_start, &QAction::triggered, this, [this] { m_workspace->up(m_environment); });
    connect(m_stop, &QAction::triggered, this, [this] { m_workspace->down(m_environment); });
    connect(m_restart, &QAction::triggered, this, [this] { m_workspace->restart(m_environment); });
    connect(m_cancel, &QAction::triggered, this, [this] { m_workspace->cancel(m_environment); });
    connect(m_refresh, &QAction::triggered, this, &MainWindow::refresh);
    connect(m_settings, &QAction::triggered, this, &MainWindow::openSettings);

    QMenu *file = menuBar()->addMenu(tr("&File"));
    file->addAction(m_settings);
    QAction *stackFolderAction =
        file->addAction(tr("Choose Stack &Folder..."), this, &MainWindow::chooseStackFolder);
    stackFolderAction->setObjectName(QStringLiteral("chooseStackFolder"));
    file->addSeparator();
    QAction *close = file->addAction(tr("&Close window"), this, &QWidget::close);
    close->setShortcut(QKeySequence::Close);
    QAction *quit = file->addAction(tr("&Quit"), this, &MainWindow::quit);
    quit->setShortcut(QKeySequence::Quit);
    quit->setObjectName(QStringLiteral("quit"));

    QMenu *stack = menuBar()->addMenu(tr("&Environment"));
    stack->addActions({ m_start, m_stop, m_restart, m_cancel, m_build });
    stack->addSeparator();
    stack->addAction(m_refresh);
    stack->addSeparator();
    for (int i = 0; i < 9; ++i) {
        auto *go = new QAction(tr("Environment %1").arg(i + 1), this);
        go->setShortcut(QKeySequence(QStringLiteral("Ctrl+%1").arg(i + 1)));
        go->setObjectName(QStringLiteral("environment%1").arg(i + 1));
        connect(go, &QAction::triggered, this, [this, i] {
            if (const Environment *e = m_envModel->environmentAt(i))
                selectEnvironment(e->name);
        });
        addAction(go);
        stack->addAction(go);
    }

    QMenu *view = menuBar()->addMenu(tr("&View"));
    const QList<std::pair<Page, QString>> pages { { Services, tr("Services") },
                                                  { Health, tr("Health") },
                                                  { Database, tr("Database") },
                                                  { Logs, tr("Logs") },
                                                  { Deployments, tr("Deployments") } };
    for (const auto &[page, name] : pages) {
        QAction *a = view->addAction(name, this, [this, page = page] { showPage(page); });
        a->setShortcut(QKeySequence(QStringLiteral("Alt+%1").arg(int(page) + 1)));
    }
    view->addSeparator();
    // The notice history: a dock, hidden until asked for or until a notice
    // comes while no tray can show it.
    m_noticeDock = new QDockWidget(tr("Notices"), this);
    m_noticeDock->setObjectName(QStringLiteral("noticeHistory"));
    m_noticeList = new QTreeWidget(m_noticeDock);
    m_noticeList->setObjectName(QStringLiteral("noticeList"));
    m_noticeList->setAccessibleName(tr("Notice history"));
    m_noticeList->setColumnCount(5);
    m_noticeList->setHeaderLabels(
        { tr("Time"), tr("Environment"), tr("What"), tr("Notice"), tr("Detail") });
    m_noticeList->setRootIsDecorated(false);
    m_noticeList->setAlternatingRowColors(true);
    m_noticeList->setTabKeyNavigation(false);
    for (int c = 0; c < 3; ++c)
        m_noticeList->header()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
    m_noticeList->header()->setStretchLastSection(true);
    m_noticeDock->setWidget(m_noticeList);
    addDockWidget(Qt::BottomDockWidgetArea, m_noticeDock);
    m_noticeDock->hide();
    QAction *history = m_noticeDock->toggleViewAction();
    history->setText(tr("&Notices"));
    history->setShortcut(QKeySequence(QStringLiteral("Ctrl+Shift+N")));
    history->setObjectName(QStringLiteral("showNotices"));
    view->addAction(history);
    QAction *find = view->addAction(tr("&Find in logs"), this, [this] {
        showPage(Logs);
        m_logs->focusSearch();
    });
    find->setShortcut(QKeySequence::Find);
    find->setObjectName(QStringLiteral("findInLogs"));

    QMenu *help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About Pilothouse"), this, [this] {
        QMessageBox::about(this, tr("About Pilothouse"),
                           tr("<b>Pilothouse %1</b><p>A control panel for a containerized "
                              "backend: start, watch, deploy and roll back.</p>")
                               .arg(QCoreApplication::applicationVersion()));
    });
}

bool MainWindow::eventFilter(QObject *watched, QEvent *event)
{
    if (watched == this && event->type() == QEvent::Paint && !m_painted) {
        m_painted = true;
        removeEventFilter(this);
        // For the start-up benchmark: when the first frame is painted, and the memory then.
        const QString report = qEnvironmentVariable("PILOTHOUSE_FIRST_PAINT_FILE");
        if (!report.isEmpty()) {
            QFile f(report);
            if (f.open(QIODevice::WriteOnly))
                f.write((statusOfProcessMemory() + QLatin1Char('\n')).toUtf8());
        }
        QTimer::singleShot(0, this, &MainWindow::goLive);
    }
    return QMainWindow::eventFilter(watched, event);
}

void MainWindow::goLive()
{
    m_workspace->startLive(m_environment);
    // The pages ask now what they could not before the first frame.
    const QString env = m_environment;
    m_environment.clear();
    selectEnvironment(env);
}

void MainWindow::selectEnvironment(const QString &name)
{
    if (name == m_environment || !m_workspace->environments().find(name))
        return;
    for (const auto &c : std::as_const(m_sessionConnections))
        disconnect(c);
    m_sessionConnections.clear();
    m_environment = name;
    m_lastError.clear();
    m_lastErrorDetails.clear();
    m_workspace->show(name);
    StackSession *session = m_workspace->session(name);
    for (int row = 0; row < m_envModel->rowCount(); ++row) {
        if (const Environment *e = m_envModel->environmentAt(row); e && e->name == name) {
            const QModelIndex index = m_envModel->index(row, EnvironmentModel::Name);
            if (m_sidebar->currentIndex() != index)
                m_sidebar->setCurrentIndex(index);
        }
    }
    m_services->setEnvironment(m_workspace, name);
    m_health->setMonitor(session->monitor());
    m_database->setSession(session);
    m_logs->setSession(session);
    m_deployments->setEnvironment(m_workspace, name);
    m_sessionConnections << connect(session, &StackSession::engineStatusChanged, this,
                                    &MainWindow::updateBanner);
    m_sessionConnections << connect(session, &StackSession::engineStatusChanged, this,
                                    &MainWindow::updateActions);
    m_sessionConnections << connect(session, &StackSession::connectionChanged, this,
                                    &MainWindow::updateBanner);
    m_sessionConnections << connect(session, &StackSession::servicesChanged, this,
                                    &MainWindow::updateActions);
    if (Deployer *d = m_workspace->deployer(name)) {
        m_sessionConnections << connect(d, &Deployer::stepChanged, this,
                                        [this] { updateActions(); });
    }
    updateTitle();
    updateBanner();
    updateActions();
    m_statusLabel->clear();
    if (m_painted)
        QSettings().setValue(QStringLiteral("window/environment"), name);
}

void MainWindow::updateTitle()
{
    const Environment *env = m_workspace->environments().find(m_environment);
    if (!env)
        return;
    setWindowTitle(tr("%1 \u2014 Pilothouse").arg(env->name));
    const ServiceHealth h = m_workspace->health(env->name);
    m_title->setText(QStringLiteral("%1 <span style='font-weight:normal; color:%2'>%3</span>")
                         .arg(env->name.toHtmlEscaped(), colourOf(toneOf(h)).name(), label(h)));
    m_title->setToolTip(env->description);
}

void MainWindow::setStartupError(const QString &message)
{
    m_startupError = message;
    updateBanner();
}

void MainWindow::updateBanner()
{
    QStringList lines;
    if (!m_startupError.isEmpty())
        lines << m_startupError.toHtmlEscaped().replace(QLatin1Char('\n'), QStringLiteral("<br>"));
    if (StackSession *s = m_workspace->session(m_environment)) {
        const SshConnection *c = s->sshConnection();
        const bool sshDown = c && c->state() != SshConnection::State::Connected;
        if (sshDown)
            lines << tr("<b>SSH to %1:</b> %2")
                         .arg(c->target().display().toHtmlEscaped(),
                              (c->reason().isEmpty() ? toString(c->state()) : c->reason())
                                  .toHtmlEscaped());
        // The engine's error would only repeat the connection's.
        if (EngineWatcher *w = s->watcher();
            !sshDown && w && w->engineStatus() == EngineWatcher::EngineStatus::Disconnected)
            lines << tr("<b>Docker engine:</b> %1").arg(w->engineError().toHtmlEscaped());
    }
    if (const QString restore = unfinishedRestore(m_environment); !restore.isEmpty())
        lines << restore.toHtmlEscaped();
    const QString owner = m_workspace->nativeOwner(m_environment);
    if (!owner.isEmpty())
        lines << tr("%1 runs under %2: Stop and Restart go to it.")
                     .arg(m_environment.toHtmlEscaped(), owner.toHtmlEscaped());
    if (!m_lastError.isEmpty())
        lines << m_lastError.toHtmlEscaped();
    for (const InvalidEnvironment &bad : m_workspace->environments().invalid) {
        lines << (bad.needsStackFolder
                      ? tr("<b>%1</b> needs its stack folder: choose a Pilothouse checkout with "
                           "File &gt; Choose Stack Folder.")
                            .arg(bad.name.toHtmlEscaped())
                      : tr("<b>%1</b> is not usable: %2")
                            .arg(bad.name.toHtmlEscaped(),
                                 bad.reason.toHtmlEscaped().replace(QLatin1Char('\n'),
                                                                    QStringLiteral("; "))));
    }
    m_banner->setText(lines.join(QStringLiteral("<br>")));
    m_bannerFrame->setVisible(!lines.isEmpty());
    const bool hasDetails = !m_lastError.isEmpty() && !m_lastErrorDetails.isEmpty();
    if (m_bannerDetails->toPlainText() != m_lastErrorDetails)
        m_bannerDetails->setPlainText(m_lastErrorDetails); // plain: shown as printed
    m_bannerDetailsButton->setVisible(hasDetails);
    if (!hasDetails)
        m_bannerDetailsButton->setChecked(false);
    const bool error = !m_startupError.isEmpty() || !m_lastError.isEmpty() ||
        (lines.size() > (owner.isEmpty() ? 0 : 1));
    m_bannerFrame->setStyleSheet(
        QStringLiteral("QFrame#bannerFrame { border: 1px solid %1; border-radius: 4px; }")
            .arg(colourOf(error ? Tone::Bad : Tone::Neutral).name()));
}

void MainWindow::updateActions()
{
    StackSession *s = m_workspace->session(m_environment);
    Deployer *d = m_workspace->deployer(m_environment);
    const bool busy = (s && s->isBusy()) || (d && d->isBusy());
    // By what runs: Start while something is not running, Stop and Restart
    // while something is. Not knowing (no services seen yet, an engine out
    // of reach) leaves all three to the user.
    bool known = s != nullptr;
    bool anyRunning = false;
    bool allRunning = true;
    const QList<ServiceRow> rows = s ? s->services() : QList<ServiceRow>();
    if (rows.isEmpty())
        known = false;
    // Rows from before the engine went out of reach are not what runs now.
    if (s && s->watcher() &&
        s->watcher()->engineStatus() == EngineWatcher::EngineStatus::Disconnected)
        known = false;
    // A native environment's processes are unknown only while nobody owns
    // them (an owner's states are adopted): then nothing of ours runs.
    const bool nativeUnowned = s && s->environment().kind == EnvironmentKind::Native &&
        m_workspace->nativeOwner(m_environment).isEmpty();
    for (const ServiceRow &r : rows) {
        switch (r.state.state) {
        case RunState::Unknown:
            if (nativeUnowned)
                allRunning = false;
            else
                known = false;
            break;
        case RunState::Unreachable:
            known = false;
            break;
        case RunState::Paused: // Stop stops it; Start resumes it
            anyRunning = true;
            allRunning = false;
            break;
        case RunState::Running:
        case RunState::Restarting:
        case RunState::Starting:
            anyRunning = true;
            break;
        default:
            allRunning = false;
        }
    }
    const bool canStart = !known || !allRunning;
    const bool canStop = !known || anyRunning;
    m_start->setEnabled(!busy && canStart);
    m_stop->setEnabled(!busy && canStop);
    m_restart->setEnabled(!busy && canStop);
    m_start->setToolTip(canStart ? tr("Start the stack") : tr("Everything is running already"));
    m_stop->setToolTip(canStop ? tr("Stop the stack") : tr("Nothing is running"));
    m_restart->setToolTip(canStop ? tr("Restart the stack") : tr("Nothing is running to restart"));
    // Builds are for environments that run an image made from a checkout.
    m_build->setVisible(s && s->canBuild());
    m_build->setEnabled(!busy && s && s->canBuild());
    m_cancel->setEnabled(busy);
    m_busy->setVisible(busy);
    m_services->setBusy(busy);
}

void MainWindow::onOperationStarted(const QString &environment, StackOperation op,
                                    const QString &service)
{
    if (environment != m_environment)
        return;
    m_lastError.clear();
    m_lastErrorDetails.clear();
    updateBanner();
    m_statusLabel->setText(service.isEmpty()
                               ? tr("%1: %2...").arg(environment, toString(op))
                               : tr("%1: %2 %3...").arg(environment, toString(op), service));
    updateActions();
    m_busy->show();
    m_cancel->setEnabled(true);
}

void MainWindow::onOperationFinished(const QString &environment, const OperationResult &r)
{
    if (environment != m_environment)
        return; // its notice is in the history
    updateActions();
    const QString what = r.service.isEmpty() ? toString(r.operation)
                                             : toString(r.operation) + QLatin1Char(' ') + r.service;
    if (r.ok()) {
        m_statusLabel->setText(tr("%1: %2 done").arg(environment, what));
    } else if (r.outcome == OperationResult::Outcome::Cancelled) {
        m_statusLabel->setText(tr("%1: %2 cancelled").arg(environment, what));
    } else {
        m_statusLabel->setText(tr("%1: %2 failed").arg(environment, what));
        m_lastError = r.message;
        m_lastErrorDetails = r.details;
        updateBanner();
    }
}

void MainWindow::onNotice(const Notice &n)
{
    auto *item = new QTreeWidgetItem;
    item->setText(0, n.at.toLocalTime().toString(QStringLiteral("HH:mm:ss")));
    item->setText(1, n.environment);
    item->setText(2, toString(n.kind));
    item->setText(3, n.title);
    item->setText(4, n.text);
    item->setToolTip(4, n.text);
    const Tone tone = n.bad() ? Tone::Bad : (n.byUser() ? Tone::Neutral : Tone::Good);
    item->setForeground(2, colourOf(tone));
    m_noticeList->insertTopLevelItem(0, item);
    while (m_noticeList->topLevelItemCount() > 500)
        delete m_noticeList->takeTopLevelItem(m_noticeList->topLevelItemCount() - 1);
    // What the user asked for is news only in the history: the status bar
    // and the banner say it already.
    if (n.byUser())
        return;
    if (!m_tray->notify(n)) {
        // No tray to keep it: the status bar says it, and the history keeps it.
        statusBar()->showMessage(
            n.title + QStringLiteral(" \u2014 ") + n.text + tr("  (View > Notices)"), 15000);
    }
}

QStringList MainWindow::notices() const
{
    QStringList out;
    for (int i = m_noticeList->topLevelItemCount() - 1; i >= 0; --i) {
        const QTreeWidgetItem *item = m_noticeList->topLevelItem(i);
        out << item->text(2) + QStringLiteral(": ") + item->text(3) + QStringLiteral(": ") +
                item->text(4);
    }
    return out;
}

QString MainWindow::statusText() const
{
    return m_statusLabel->text();
}

void MainWindow::showPage(Page page)
{
    m_tabs->setCurrentIndex(int(page));
}

void MainWindow::refresh()
{
    StackSession *s = m_workspace->session(m_environment);
    if (!s)
        return;
    s->monitor()->checkNow();
    if (s->watcher())
        s->watcher()->refresh();
    m_database->refresh();
    m_deployments->refreshTags();
    m_deployments->reloadHistory();
    m_statusLabel->setText(tr("%1: checking again").arg(m_environment));
}

void MainWindow::chooseStackFolder()
{
    auto *dialog = new QFileDialog(this, tr("Choose the Pilothouse checkout (with compose.yaml)"),
                                   stackFolder().path);
    dialog->setObjectName(QStringLiteral("stackFolderDialog"));
    dialog->setFileMode(QFileDialog::Directory);
    dialog->setOption(QFileDialog::ShowDirsOnly);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &QFileDialog::fileSelected, this, [this](const QString &folder) {
        if (const Outcome chosen = setStackFolder(folder); !chosen) {
            m_lastError = chosen.error();
            m_lastErrorDetails.clear();
            updateBanner();
            return;
        }
        if (const Outcome r = m_workspace->reload(); !r) {
            m_lastError = r.error();
            m_lastErrorDetails.clear();
            updateBanner();
            return;
        }
        m_statusLabel->setText(tr("The stack folder is now %1").arg(folder));
    });
    dialog->open();
}

void MainWindow::openSettings()
{
    auto *dialog = new SettingsDialog(m_workspace, m_environment, this);
    dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(dialog, &SettingsDialog::saved, this, [this] {
        if (const Outcome r = m_workspace->reload(); !r) {
            m_lastError = r.error();
            m_lastErrorDetails.clear();
            updateBanner();
            return;
        }
        m_startupError.clear();
        updateBanner();
        m_statusLabel->setText(tr("Environments saved to %1").arg(m_workspace->editablePath()));
    });
    dialog->open();
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    if (!m_quitting && m_tray->isAvailable()) {
        // Like other tray tools: closing hides; Quit (Ctrl+Q, tray menu) leaves.
        saveSettings();
        hide();
        m_tray->notify({ Notice::Kind::Info,
                         {},
                         tr("Pilothouse keeps watching"),
                         tr("It is in the tray; Quit from its menu.") });
        event->ignore();
        return;
    }
    if (!m_quitting) {
        event->ignore();
        quit();
        return;
    }
    saveSettings();
    event->accept();
}

void MainWindow::quit()
{
    if (m_quitting)
        return;
    m_quitting = true;
    saveSettings();
    m_workspace->saveSnapshots();
    if (!m_workspace->hasRunningNative() && !m_workspace->hasRunningDeployment()) {
        close();
        QCoreApplication::quit();
        return;
    }
    // A deployment is cancelled (its previous tag comes back) and native
    // processes this window runs are stopped, before it leaves.
    m_statusLabel->setText(m_workspace->hasRunningDeployment()
                               ? tr("Cancelling the deployment; the previous tag comes back...")
                               : tr("Stopping what runs on this machine..."));
    m_busy->show();
    connect(m_workspace, &Workspace::shutdownFinished, this, [this] {
        close();
        QCoreApplication::quit();
    });
    m_workspace->shutdown();
}

void MainWindow::restoreSettings()
{
    QSettings s;
    if (!restoreGeometry(s.value(QStringLiteral("window/geometry")).toByteArray()))
        resize(1180, 740);
    restoreState(s.value(QStringLiteral("window/state")).toByteArray());
    if (auto *split = findChild<QSplitter *>(QStringLiteral("mainSplitter")))
        split->restoreState(s.value(QStringLiteral("window/splitter")).toByteArray());
    const QString last = s.value(QStringLiteral("window/environment")).toString();
    const auto &envs = m_workspace->environments();
    selectEnvironment(envs.find(last) ? last : envs.environments.value(0).name);
    m_tabs->setCurrentIndex(s.value(QStringLiteral("window/page"), 0).toInt());
}

void MainWindow::saveSettings() const
{
    QSettings s;
    s.setValue(QStringLiteral("window/geometry"), saveGeometry());
    s.setValue(QStringLiteral("window/state"), saveState());
    if (auto *split = findChild<QSplitter *>(QStringLiteral("mainSplitter")))
        s.setValue(QStringLiteral("window/splitter"), split->saveState());
    s.setValue(QStringLiteral("window/environment"), m_environment);
    s.setValue(QStringLiteral("window/page"), m_tabs->currentIndex());
}

} // namespace pilothouse::gui
