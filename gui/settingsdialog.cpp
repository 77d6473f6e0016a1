#include "settingsdialog.h"

#include "core/secrets.h"
#include "core/workspace.h"
#include "engine/connectioncheck.h"
#include "env/environment.h"
#include "style.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScopedValueRollback>
#include <QScrollArea>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace pilothouse::gui {

namespace {

int indexOfSource(SecretSource source)
{
    return source == SecretSource::Keychain ? 2 : source == SecretSource::Variable ? 1 : 0;
}

SecretSource sourceAt(const QComboBox *box)
{
    const QString v = box->currentData().toString();
    return v == QLatin1String("keychain") ? SecretSource::Keychain
        : v == QLatin1String("env")       ? SecretSource::Variable
                                          : SecretSource::None;
}

} // namespace

QString SettingsDialog::targetPath() const
{
    return m_workspace ? m_workspace->editablePath() : userEnvironmentsPath();
}

SettingsDialog::SettingsDialog(Workspace *workspace, const QString &select, QWidget *parent)
    : QDialog(parent)
    , m_workspace(workspace)
    , m_general(new QLabel(this))
    , m_list(new QListWidget(this))
    , m_name(new QLineEdit(this))
    , m_kind(new QComboBox(this))
    , m_description(new QLineEdit(this))
    , m_composeBox(new QGroupBox(tr("Compose"), this))
    , m_files(new QPlainTextEdit(this))
    , m_project(new QLineEdit(this))
    , m_envFile(new QLineEdit(this))
    , m_dockerHost(new QLineEdit(this))
    , m_dockerContext(new QLineEdit(this))
    , m_engine(new QComboBox(this))
    , m_sshHost(new QLineEdit(this))
    , m_sshUser(new QLineEdit(this))
    , m_sshPort(new QSpinBox(this))
    , m_identityFile(new QLineEdit(this))
    , m_test(new QPushButton(tr("&Test connection"), this))
    , m_checkSteps(new QTreeWidget(this))
    , m_checkSummary(new QLabel(this))
    , m_nativeBox(new QGroupBox(tr("Processes on this machine"), this))
    , m_processes(new QPlainTextEdit(this))
    , m_services(new QTableWidget(0, 4, this))
    , m_dsn(new QLineEdit(this))
    , m_passwordSource(new QComboBox(this))
    , m_passwordEnv(new QLineEdit(this))
    , m_password(new QLineEdit(this))
    , m_repository(new QLineEdit(this))
    , m_imageService(new QLineEdit(this))
    , m_registryUser(new QLineEdit(this))
    , m_tokenSource(new QComboBox(this))
    , m_tokenEnv(new QLineEdit(this))
    , m_token(new QLineEdit(this))
    , m_window(new QDoubleSpinBox(this))
    , m_strategy(new QComboBox(this))
    , m_timeout(new QDoubleSpinBox(this))
{
    m_liveCheck.setSingleShot(true);
    m_liveCheck.setInterval(300);
    connect(&m_liveCheck, &QTimer::timeout, this, &SettingsDialog::validateLive);
    setWindowTitle(tr("Environments"));
    setObjectName(QStringLiteral("settingsDialog"));
    resize(900, 680);

    // The file as written. The built-in one names compose files relative to
    // the source tree; a user copy lives elsewhere, so they become absolute.
    m_document = EnvironmentDocument(workspace->configText());
    if (workspace->isBuiltIn()) {
        for (int i = 0; i < m_document.size(); ++i) {
            const Environment *parsed = workspace->environments().find(m_document.name(i));
            EnvironmentFields f = m_document.fields(i);
            if (parsed && f.kind == QLatin1String("compose") && !f.composeFiles.isEmpty()) {
                f.composeFiles = parsed->composeFiles;
                m_document.setFields(i, f);
            }
        }
    }

    m_general->setObjectName(QStringLiteral("generalError"));
    m_general->setWordWrap(true);
    m_general->setStyleSheet(QStringLiteral("color: %1").arg(colourOf(Tone::Bad).name()));
    m_general->hide();
    m_list->setObjectName(QStringLiteral("environmentList"));
    m_list->setAccessibleName(tr("Environments"));
    auto *add = new QPushButton(tr("&Add"), this);
    auto *remove = new QPushButton(tr("&Remove"), this);
    add->setObjectName(QStringLiteral("addEnvironment"));
    remove->setObjectName(QStringLiteral("removeEnvironment"));
    auto *left = new QWidget(this);
    auto *leftLayout = new QVBoxLayout(left);
    leftLayout->setContentsMargins(0, 0, 0, 0);
    leftLayout->addWidget(m_list);
    auto *listButtons = new QHBoxLayout;
    listButtons->addWidget(add);
    listButtons->addWidget(remove);
    leftLayout->addLayout(listButtons);

    m_kind->addItem(tr("native: processes on this machine"), QStringLiteral("native"));
    m_kind->addItem(tr("compose: a Docker Compose project"), QStringLiteral("compose"));
    m_kind->addItem(tr("swarm: a stack on a Docker Swarm"), QStringLiteral("swarm"));
    m_passwordSource->addItem(tr("libpq: ~/.pgpass or PGPASSWORD"), QStringLiteral("libpq"));
    m_passwordSource->addItem(tr("an environment variable"), QStringLiteral("env"));
    m_passwordSource->addItem(tr("the system keychain"), QStringLiteral("keychain"));
    m_strategy->addItem(tr("recreate (a short outage on every deploy)"),
                        QStringLiteral("recreate"));
    m_strategy->addItem(tr("start-first (no outage; needs a proxy in front)"),
                        QStringLiteral("start-first"));
    m_strategy->setToolTip(
        tr("start-first starts the new version next to the old one and removes the old one "
           "once the new one passed the health gate. The services must not publish a fixed "
           "host port: a proxy in front owns it, as this repository's compose.yaml has."));
    m_tokenSource->addItem(tr("none (public images)"), QStringLiteral("none"));
    m_tokenSource->addItem(tr("an environment variable"), QStringLiteral("env"));
    m_tokenSource->addItem(tr("the system keychain"), QStringLiteral("keychain"));
    for (QLineEdit *secret : { m_password, m_token }) {
        secret->setEchoMode(QLineEdit::Password);
        secret->setPlaceholderText(tr("unchanged (stored in the keychain)"));
    }
    m_files->setPlaceholderText(tr("one compose file per line"));
    m_files->setMaximumHeight(70);
    m_processes->setPlaceholderText(
        tr("[{\"name\": \"deckhand\", \"program\": \"deckhand\", \"args\": [\"serve\"]}]"));
    m_processes->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    m_processes->setMinimumHeight(120);
    m_services->setHorizontalHeaderLabels(
        { tr("Service"), tr("Health URL"), tr("Every (s)"), tr("Timeout (s)") });
    m_services->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
    m_services->verticalHeader()->hide();
    m_services->setMinimumHeight(140);
    for (QDoubleSpinBox *spin : { m_window, m_timeout }) {
        spin->setRange(0, 3600);
        spin->setDecimals(1);
        spin->setSuffix(tr(" s"));
    }

    auto *formWidget = new QWidget(this);
    auto *formLayout = new QVBoxLayout(formWidget);
    auto *general = new QFormLayout;
    addField(general, QStringLiteral("name"), tr("&Name"), m_name,
             tr("lowercase letters, digits, '_' and '-'"));
    addField(general, QStringLiteral("kind"), tr("&Kind"), m_kind);
    addField(general, QStringLiteral("description"), tr("D&escription"), m_description);
    formLayout->addLayout(general);

    auto *compose = new QFormLayout(m_composeBox);
    addField(compose, QStringLiteral("compose.files"), tr("Compose &files"), m_files);
    addField(compose, QStringLiteral("compose.project"), tr("&Project"), m_project,
             tr("the compose project name"));
    addField(compose, QStringLiteral("compose.envFile"), tr("Env file"), m_envFile,
             tr("optional --env-file"));
    m_composeForm = compose;
    m_engine->addItem(tr("this machine's Docker"), QStringLiteral("local"));
    m_engine->addItem(tr("a remote host over SSH"), QStringLiteral("ssh"));
    m_engine->addItem(tr("a Docker host address (tcp://, unix://)"), QStringLiteral("url"));
    m_engine->addItem(tr("a Docker context"), QStringLiteral("context"));
    addField(compose, QStringLiteral("engine"), tr("En&gine"), m_engine);
    addField(compose, QStringLiteral("ssh.host"), tr("SSH h&ost"), m_sshHost,
             tr("a host name, address, or a Host of your ~/.ssh/config"));
    addField(compose, QStringLiteral("ssh.user"), tr("SSH &user"), m_sshUser,
             tr("empty: the User of ~/.ssh/config, else your login name"));
    m_sshPort->setRange(0, 65535);
    m_sshPort->setSpecialValueText(tr("default (22, or the Port of ~/.ssh/config)"));
    addField(compose, QStringLiteral("ssh.port"), tr("SSH &port"), m_sshPort);
    auto *identityRow = new QWidget(this);
    auto *identityLayout = new QHBoxLayout(identityRow);
    identityLayout->setContentsMargins(0, 0, 0, 0);
    identityLayout->addWidget(m_identityFile, 1);
    auto *browse = new QPushButton(tr("Choose…"), identityRow);
    browse->setObjectName(QStringLiteral("chooseIdentityFile"));
    identityLayout->addWidget(browse);
    addField(compose, QStringLiteral("docker.identityFile"), tr("&Identity file"), identityRow,
             tr("optional private key; empty: ssh-agent and ~/.ssh/config choose"));
    m_fields[QStringLiteral("docker.identityFile")].widget = m_identityFile;
    identityRow->setObjectName(QStringLiteral("identityFileRow"));
    m_identityFile->setObjectName(QStringLiteral("field:docker.identityFile"));
    m_identityFile->setAccessibleName(tr("Identity file"));
    addField(compose, QStringLiteral("docker.host"), tr("Docker &host"), m_dockerHost,
             tr("tcp://host:2376 or unix:///path; for SSH, made from the fields above"));
    addField(compose, QStringLiteral("docker.context"), tr("Docker conte&xt"), m_dockerContext,
             tr("a context of `docker context ls`"));
    auto *testRow = new QWidget(this);
    auto *testLayout = new QVBoxLayout(testRow);
    testLayout->setContentsMargins(0, 0, 0, 0);
    auto *testButtons = new QHBoxLayout;
    m_test->setObjectName(QStringLiteral("testConnection"));
    m_test->setToolTip(tr("Checks the way to the engine as the form has it now: TCP, host key, "
                          "login, the Docker socket, compose"));
    testButtons->addWidget(m_test);
    testButtons->addWidget(m_checkSummary, 1);
    testLayout->addLayout(testButtons);
    m_checkSummary->setObjectName(QStringLiteral("connectionSummary"));
    m_checkSummary->setWordWrap(true);
    m_checkSummary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_checkSteps->setObjectName(QStringLiteral("connectionSteps"));
    m_checkSteps->setAccessibleName(tr("Connection test results"));
    m_checkSteps->setColumnCount(3);
    m_checkSteps->setHeaderLabels({ tr("Stage"), tr("Result"), tr("Detail") });
    m_checkSteps->setRootIsDecorated(false);
    m_checkSteps->setWordWrap(true);
    m_checkSteps->setUniformRowHeights(false);
    m_checkSteps->setMinimumHeight(130);
    m_checkSteps->header()->setStretchLastSection(true);
    m_checkSteps->hide();
    testLayout->addWidget(m_checkSteps);
    compose->addRow(QString(), testRow);
    formLayout->addWidget(m_composeBox);

    auto *native = new QFormLayout(m_nativeBox);
    addField(native, QStringLiteral("processes"), tr("P&rocesses (JSON)"), m_processes);
    formLayout->addWidget(m_nativeBox);

    auto *watch = new QGroupBox(tr("Services to watch"), this);
    auto *watchForm = new QFormLayout(watch);
    auto *serviceButtons = new QHBoxLayout;
    auto *addService = new QPushButton(tr("Add service"), this);
    auto *removeService = new QPushButton(tr("Remove service"), this);
    serviceButtons->addWidget(addService);
    serviceButtons->addWidget(removeService);
    serviceButtons->addStretch();
    auto *servicesBox = new QWidget(this);
    auto *servicesLayout = new QVBoxLayout(servicesBox);
    servicesLayout->setContentsMargins(0, 0, 0, 0);
    servicesLayout->addWidget(m_services);
    servicesLayout->addLayout(serviceButtons);
    m_services->setAccessibleName(tr("Services and their health endpoints"));
    addField(watchForm, QStringLiteral("services"), tr("&Services"), servicesBox);
    m_fields[QStringLiteral("services")].widget = m_services;
    formLayout->addWidget(watch);

    auto *db = new QGroupBox(tr("Database"), this);
    auto *dbForm = new QFormLayout(db);
    addField(dbForm, QStringLiteral("database.dsn"), tr("&DSN"), m_dsn,
             tr("postgresql://user@host:5432/db or sqlite:///path.db, without a password"));
    addField(dbForm, QStringLiteral("database.keychain"), tr("Password from"), m_passwordSource);
    addField(dbForm, QStringLiteral("database.passwordEnv"), tr("Password variable"),
             m_passwordEnv);
    addField(dbForm, QStringLiteral("database.password"), tr("Pass&word"), m_password,
             tr("goes to the system keychain, never to the file"));
    formLayout->addWidget(db);

    auto *image = new QGroupBox(tr("Deployments"), this);
    auto *imageForm = new QFormLayout(image);
    addField(imageForm, QStringLiteral("image.repository"), tr("Image &repository"), m_repository,
             tr("like ghcr.io/org/deckhand, without a tag"));
    addField(imageForm, QStringLiteral("image.services"), tr("Ser&vices of the image"),
             m_imageService);
    m_imageService->setPlaceholderText(tr("api, worker"));
    m_imageService->setToolTip(
        tr("Every service that runs the image, separated by commas; a deployment moves them "
           "together. The first one's endpoint tells the build's schema version."));
    addField(imageForm, QStringLiteral("image.user"), tr("Registry user"), m_registryUser);
    addField(imageForm, QStringLiteral("image.keychain"), tr("Registry token from"), m_tokenSource);
    addField(imageForm, QStringLiteral("image.tokenEnv"), tr("Token variable"), m_tokenEnv);
    addField(imageForm, QStringLiteral("image.token"), tr("Registry &token"), m_token,
             tr("goes to the system keychain, never to the file"));
    addField(imageForm, QStringLiteral("deploy.strategy"), tr("Rollout"), m_strategy);
    addField(imageForm, QStringLiteral("deploy.healthWindowSeconds"), tr("Health window"), m_window,
             tr("how long a new tag must stay healthy"));
    addField(imageForm, QStringLiteral("deploy.timeoutSeconds"), tr("Gate timeout"), m_timeout,
             tr("how long it may take to get healthy before it is reverted"));
    formLayout->addWidget(image);
    formLayout->addStretch();

    auto *scroll = new QScrollArea(this);
    scroll->setWidget(formWidget);
    scroll->setWidgetResizable(true);
    auto *split = new QSplitter(this);
    split->addWidget(left);
    split->addWidget(scroll);
    split->setStretchFactor(1, 3);

    auto *buttons = new QDialogButtonBox(QDialogButtonBox::Save | QDialogButtonBox::Cancel, this);
    m_save = buttons->button(QDialogButtonBox::Save);
    m_save->setObjectName(QStringLiteral("saveEnvironments"));
    // Where Save writes: true before the first save and after a failed one.
    auto *where = new QLabel(tr("Save writes %1").arg(targetPath()), this);
    where->setObjectName(QStringLiteral("saveTarget"));
    if (workspace->isFallback() && QFileInfo::exists(targetPath()))
        where->setText(
            tr("Save writes %1; the file there now, which has problems, is kept next to "
               "it as %2.")
                .arg(targetPath(), QFileInfo(targetPath()).fileName() + QStringLiteral(".broken")));
    where->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(m_general);
    layout->addWidget(split, 1);
    layout->addWidget(where);
    layout->addWidget(buttons);

    for (int i = 0; i < m_document.size(); ++i)
        m_list->addItem(m_document.name(i));
    connect(m_list, &QListWidget::currentRowChanged, this, [this](int row) {
        if (row == m_current)
            return;
        store();
        load(row);
    });
    connect(m_name, &QLineEdit::textEdited, this, [this](const QString &text) {
        if (QListWidgetItem *item = m_list->item(m_current))
            item->setText(text);
    });
    connect(m_kind, &QComboBox::currentIndexChanged, this, &SettingsDialog::updateKind);
    connect(m_engine, &QComboBox::currentIndexChanged, this, &SettingsDialog::updateEngine);
    connect(m_dockerHost, &QLineEdit::textEdited, this, [this](const QString &text) {
        if (m_engine->currentData().toString() == QLatin1String("url"))
            m_urlHost = text;
    });
    for (QLineEdit *e : { m_sshHost, m_sshUser })
        connect(e, &QLineEdit::textEdited, this, &SettingsDialog::updateEngine);
    connect(m_sshPort, &QSpinBox::valueChanged, this, &SettingsDialog::updateEngine);
    connect(browse, &QPushButton::clicked, this, [this] {
        const QString start = m_identityFile->text().isEmpty()
            ? QDir::home().filePath(QStringLiteral(".ssh"))
            : m_identityFile->text();
        const QString file = QFileDialog::getOpenFileName(this, tr("Private key"), start);
        if (!file.isEmpty())
            m_identityFile->setText(file);
    });
    connect(m_test, &QPushButton::clicked, this, &SettingsDialog::testConnection);
    connect(m_passwordSource, &QComboBox::currentIndexChanged, this, &SettingsDialog::updateKind);
    connect(m_tokenSource, &QComboBox::currentIndexChanged, this, &SettingsDialog::updateKind);
    connect(add, &QPushButton::clicked, this, &SettingsDialog::addEnvironment);
    connect(remove, &QPushButton::clicked, this, &SettingsDialog::removeEnvironment);
    connect(addService, &QPushButton::clicked, this, [this] {
        const int row = m_services->rowCount();
        m_services->insertRow(row);
        m_services->setCurrentCell(row, 0);
        m_services->editItem(m_services->item(row, 0) ? m_services->item(row, 0)
                                                      : new QTableWidgetItem);
    });
    connect(removeService, &QPushButton::clicked, this, [this] {
        if (m_services->currentRow() >= 0)
            m_services->removeRow(m_services->currentRow());
    });
    connect(buttons, &QDialogButtonBox::accepted, this, &SettingsDialog::save);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

    int first = 0;
    for (int i = 0; i < m_list->count(); ++i) {
        if (m_list->item(i)->text() == select)
            first = i;
    }
    m_list->setCurrentRow(m_list->count() > 0 ? first : -1);
    if (m_list->count() == 0)
        addEnvironment();
}

QWidget *SettingsDialog::addField(QFormLayout *form, const QString &key, const QString &label,
                                  QWidget *w, const QString &help)
{
    auto *box = new QWidget(this);
    auto *v = new QVBoxLayout(box);
    v->setContentsMargins(0, 0, 0, 0);
    v->setSpacing(1);
    v->addWidget(w);
    if (!help.isEmpty()) {
        auto *hint = new QLabel(help, box);
        QFont f = hint->font();
        f.setPointSizeF(f.pointSizeF() * 0.9);
        hint->setFont(f);
        hint->setEnabled(false);
        hint->setWordWrap(true);
        v->addWidget(hint);
    }
    auto *error = new QLabel(box);
    error->setObjectName(QStringLiteral("error:") + key);
    error->setWordWrap(true);
    error->setStyleSheet(QStringLiteral("color: %1").arg(colourOf(Tone::Bad).name()));
    error->hide();
    v->addWidget(error);
    auto *l = new QLabel(label, this);
    l->setBuddy(w);
    form->addRow(l, box);
    w->setAccessibleName(QString(label).remove(QLatin1Char('&')));
    w->setObjectName(QStringLiteral("field:") + key);
    m_fields.insert(key, Field { w, error });
    m_fieldOrder << key;
    // An edit by the person (not a load) is checked a moment later.
    const auto edited = [this] {
        if (!m_loading)
            m_liveCheck.start();
    };
    QList<QWidget *> parts { w };
    parts += w->findChildren<QWidget *>();
    for (QWidget *part : std::as_const(parts)) {
        if (auto *e = qobject_cast<QLineEdit *>(part))
            connect(e, &QLineEdit::textEdited, this, edited);
        else if (auto *c = qobject_cast<QComboBox *>(part))
            connect(c, &QComboBox::activated, this, edited);
        else if (auto *spin = qobject_cast<QSpinBox *>(part))
            connect(spin, &QSpinBox::valueChanged, this, edited);
        else if (auto *d = qobject_cast<QDoubleSpinBox *>(part))
            connect(d, &QDoubleSpinBox::valueChanged, this, edited);
        else if (auto *p = qobject_cast<QPlainTextEdit *>(part))
            connect(p, &QPlainTextEdit::textChanged, this, edited);
    }
    return box;
}

void SettingsDialog::selectEnvironment(const QString &name)
{
    for (int i = 0; i < m_list->count(); ++i) {
        if (m_list->item(i)->text() == name)
            m_list->setCurrentRow(i);
    }
}

void SettingsDialog::load(int row)
{
    m_liveCheck.stop();
    const QScopedValueRollback<bool> loading(m_loading, true);
    m_current = row;
    clearErrors();
    const EnvironmentFields f = row >= 0 ? m_document.fields(row) : EnvironmentFields {};
    m_name->setText(f.name);
    m_kind->setCurrentIndex(std::max(0, m_kind->findData(f.kind)));
    m_description->setText(f.description);
    m_files->setPlainText(f.composeFiles.join(QLatin1Char('\n')));
    m_project->setText(f.project);
    m_envFile->setText(f.envFile);
    // The engine fields are set together; updateEngine() runs once at the end.
    const QSignalBlocker holdPort(m_sshPort);
    const QSignalBlocker holdEngine(m_engine);
    if (m_check) {
        m_check->disconnect(this);
        m_check->deleteLater();
        m_check = nullptr;
        m_test->setEnabled(true);
    }
    m_dockerHost->setText(f.dockerHost);
    m_urlHost = f.dockerHost.startsWith(QLatin1String("ssh://")) ? QString() : f.dockerHost;
    m_dockerContext->setText(f.dockerContext);
    m_identityFile->setText(f.identityFile);
    m_sshHost->clear();
    m_sshUser->clear();
    m_sshPort->setValue(0);
    int engine = 0;
    if (f.dockerHost.startsWith(QLatin1String("ssh://"))) {
        engine = 1;
        const QUrl url(f.dockerHost);
        m_sshHost->setText(url.host());
        m_sshUser->setText(url.userName());
        m_sshPort->setValue(url.port(0));
    } else if (!f.dockerHost.isEmpty()) {
        engine = 2;
    } else if (!f.dockerContext.isEmpty()) {
        engine = 3;
    }
    m_engine->setCurrentIndex(engine);
    m_checkSteps->clear();
    m_checkSteps->hide();
    m_checkSummary->clear();
    m_processes->setPlainText(f.processes);
    m_services->setRowCount(0);
    for (const EnvironmentFields::Endpoint &e : f.endpoints) {
        const int r = m_services->rowCount();
        m_services->insertRow(r);
        m_services->setItem(r, 0, new QTableWidgetItem(e.service));
        m_services->setItem(r, 1, new QTableWidgetItem(e.url));
        m_services->setItem(r, 2, new QTableWidgetItem(e.intervalSeconds));
        m_services->setItem(r, 3, new QTableWidgetItem(e.timeoutSeconds));
    }
    m_dsn->setText(f.dsn);
    m_passwordSource->setCurrentIndex(indexOfSource(f.passwordSource));
    m_passwordEnv->setText(f.passwordEnv);
    m_password->clear();
    m_repository->setText(f.repository);
    m_imageService->setText(f.imageServices.join(QStringLiteral(", ")));
    m_registryUser->setText(f.registryUser);
    m_tokenSource->setCurrentIndex(indexOfSource(f.tokenSource));
    m_tokenEnv->setText(f.tokenEnv);
    m_token->clear();
    m_window->setValue(f.healthWindowSeconds);
    m_strategy->setCurrentIndex(std::max(
        0, m_strategy->findData(f.strategy.isEmpty() ? QStringLiteral("recreate") : f.strategy)));
    m_timeout->setValue(f.deployTimeoutSeconds);
    updateKind();
    updateEngine();
}

QString SettingsDialog::sshHostUrl() const
{
    const QString host = m_sshHost->text().trimmed();
    if (host.isEmpty())
        return QStringLiteral("ssh://");
    QString url = QStringLiteral("ssh://");
    if (!m_sshUser->text().trimmed().isEmpty())
        url += m_sshUser->text().trimmed() + QLatin1Char('@');
    url += host.contains(QLatin1Char(':')) && !host.startsWith(QLatin1Char('['))
        ? QStringLiteral("[%1]").arg(host)
        : host;
    if (m_sshPort->value() > 0)
        url += QLatin1Char(':') + QString::number(m_sshPort->value());
    return url;
}

void SettingsDialog::updateEngine()
{
    const QString engine = m_engine->currentData().toString();
    const bool ssh = engine == QLatin1String("ssh");
    for (const char *key : { "ssh.host", "ssh.user", "ssh.port" })
        m_composeForm->setRowVisible(m_fields.value(QLatin1String(key)).widget->parentWidget(),
                                     ssh);
    // The identity row's field sits one level deeper (next to its button).
    m_composeForm->setRowVisible(m_identityFile->parentWidget()->parentWidget(), ssh);
    m_composeForm->setRowVisible(m_dockerHost->parentWidget(),
                                 ssh || engine == QLatin1String("url"));
    m_composeForm->setRowVisible(m_dockerContext->parentWidget(),
                                 engine == QLatin1String("context"));
    m_dockerHost->setReadOnly(ssh);
    // One field shows either the address made from the SSH fields or the
    // one typed for tcp:// / unix://, each kept when the other is shown.
    if (ssh)
        m_dockerHost->setText(sshHostUrl());
    else
        m_dockerHost->setText(m_urlHost);
}

void SettingsDialog::updateKind()
{
    const bool compose = m_kind->currentData().toString() == QLatin1String("compose");
    const bool docker = compose || m_kind->currentData().toString() == QLatin1String("swarm");
    m_composeBox->setVisible(docker);
    m_nativeBox->setVisible(!docker);
    const QString pw = m_passwordSource->currentData().toString();
    m_passwordEnv->setEnabled(pw == QLatin1String("env"));
    m_password->setEnabled(pw == QLatin1String("keychain"));
    const QString token = m_tokenSource->currentData().toString();
    m_tokenEnv->setEnabled(token == QLatin1String("env"));
    m_token->setEnabled(token == QLatin1String("keychain"));
    m_strategy->setEnabled(compose);
}

EnvironmentFields SettingsDialog::formFields() const
{
    EnvironmentFields f;
    f.name = m_name->text().trimmed();
    f.kind = m_kind->currentData().toString();
    f.description = m_description->text();
    f.composeFiles = m_files->toPlainText().split(QLatin1Char('\n'), Qt::SkipEmptyParts);
    f.project = m_project->text();
    f.envFile = m_envFile->text();
    const QString engine = m_engine->currentData().toString();
    f.dockerHost = engine == QLatin1String("ssh") ? sshHostUrl()
        : engine == QLatin1String("url")          ? m_dockerHost->text().trimmed()
                                                  : QString();
    f.dockerContext =
        engine == QLatin1String("context") ? m_dockerContext->text().trimmed() : QString();
    f.identityFile = engine == QLatin1String("ssh") ? m_identityFile->text().trimmed() : QString();
    f.processes = m_processes->toPlainText();
    for (int r = 0; r < m_services->rowCount(); ++r) {
        const auto cell = [this, r](int c) {
            const QTableWidgetItem *i = m_services->item(r, c);
            return i ? i->text().trimmed() : QString();
        };
        f.endpoints.append({ cell(0), cell(1), cell(2), cell(3) });
    }
    f.dsn = m_dsn->text();
    f.passwordSource = sourceAt(m_passwordSource);
    f.passwordEnv = m_passwordEnv->text();
    f.repository = m_repository->text();
    f.imageServices = m_imageService->text().split(u',', Qt::SkipEmptyParts);
    f.registryUser = m_registryUser->text();
    f.tokenSource = sourceAt(m_tokenSource);
    f.tokenEnv = m_tokenEnv->text();
    f.healthWindowSeconds = m_window->value();
    // Said explicitly for a compose environment; a native one has none.
    if (f.kind == QLatin1String("compose"))
        f.strategy = m_strategy->currentData().toString();
    f.deployTimeoutSeconds = m_timeout->value();
    return f;
}

void SettingsDialog::store()
{
    if (m_current < 0 || m_current >= m_document.size())
        return;
    m_document.setFields(m_current, formFields());
    const QString name = m_document.name(m_current);
    // Typed secrets wait here (never in the file) until a valid save.
    if (!m_password->text().isEmpty())
        m_secrets.insert(name + QStringLiteral("/database"), m_password->text());
    if (!m_token->text().isEmpty())
        m_secrets.insert(name + QStringLiteral("/registry"), m_token->text());
}

EnvironmentDocument SettingsDialog::document() const
{
    EnvironmentDocument doc = m_document;
    if (m_current >= 0 && m_current < doc.size())
        doc.setFields(m_current, formFields());
    return doc;
}

QByteArray SettingsDialog::documentText() const
{
    return document().text();
}

void SettingsDialog::clearErrors()
{
    for (const Field &f : std::as_const(m_fields)) {
        f.error->clear();
        f.error->hide();
    }
    m_general->clear();
    m_general->hide();
}

QString SettingsDialog::errorFor(const QString &field) const
{
    const auto it = m_fields.constFind(field);
    return it == m_fields.cend() || it->error->isHidden() ? QString() : it->error->text();
}

QString SettingsDialog::generalError() const
{
    return m_general->isHidden() ? QString() : m_general->text();
}

QWidget *SettingsDialog::fieldWidget(const QString &field) const
{
    return m_fields.value(field).widget;
}

void SettingsDialog::addEnvironment()
{
    store();
    m_list->addItem(m_document.name(m_document.add()));
    m_current = -1;
    m_list->setCurrentRow(m_list->count() - 1);
    m_name->setFocus();
    m_name->selectAll();
}

void SettingsDialog::removeEnvironment()
{
    const int row = m_list->currentRow();
    if (row < 0)
        return;
    m_current = -1; // nothing to store from a removed one
    m_document.remove(row);
    delete m_list->takeItem(row);
    if (m_list->count() > 0) {
        m_list->setCurrentRow(std::min(row, m_list->count() - 1));
        load(m_list->currentRow());
    } else {
        load(-1);
    }
}

QStringList SettingsDialog::placeIssues(const QList<EnvironmentDocument::Issue> &issues)
{
    const QString here = m_current >= 0 ? m_name->text().trimmed() : QString();
    QStringList elsewhere;
    for (const EnvironmentDocument::Issue &issue : issues) {
        // Next to its field when it is about the environment shown.
        if (issue.environment != here || issue.field.isEmpty() || !m_fields.contains(issue.field)) {
            elsewhere << (issue.environment.isEmpty()
                              ? issue.message
                              : tr("%1: %2%3")
                                    .arg(issue.environment,
                                         issue.path.isEmpty() ? QString()
                                                              : issue.path + QStringLiteral(": "),
                                         issue.message));
            continue;
        }
        QLabel *error = m_fields.value(issue.field).error;
        const QString text = issue.path == issue.field
            ? issue.message
            : QStringLiteral("%1: %2").arg(issue.path, issue.message);
        error->setText(error->text().isEmpty() ? text : error->text() + QLatin1Char('\n') + text);
        error->show();
    }
    return elsewhere;
}

void SettingsDialog::validateLive()
{
    if (m_current < 0 || m_saving)
        return;
    // The fields of the environment shown, checked as a save would check
    // them, while the person types; the rest waits for Save.
    const QList<EnvironmentDocument::Issue> issues = document().issues(targetPath());
    for (const Field &f : std::as_const(m_fields)) {
        f.error->clear();
        f.error->hide();
    }
    placeIssues(issues);
}

void SettingsDialog::save()
{
    if (m_saving)
        return;
    clearErrors();
    store();
    const QString path = targetPath();
    const QList<EnvironmentDocument::Issue> issues = m_document.issues(path);
    if (!issues.isEmpty()) {
        const QStringList elsewhere = placeIssues(issues);
        if (!elsewhere.isEmpty()) {
            m_general->setText(tr("Not saved: %1").arg(elsewhere.join(QLatin1Char('\n'))));
            m_general->show();
        }
        // The first field with a problem gets the focus.
        for (const QString &key : std::as_const(m_fieldOrder)) {
            const Field &field = m_fields[key];
            if (!field.error->isHidden()) {
                field.widget->setFocus(Qt::OtherFocusReason);
                break;
            }
        }
        return;
    }
    // The document's save transaction: secrets first (if the keychain refuses,
    // the file stays as it was); a file this form replaced because it was
    // broken is kept as .broken; then an atomic write.
    m_saving = true;
    m_save->setEnabled(false);
    EnvironmentDocument::Save request;
    request.path = path;
    request.secrets = m_secrets;
    request.keepBroken = m_workspace && m_workspace->isFallback();
    m_document.save(request, this, [this](Outcome written) {
        m_saving = false;
        m_save->setEnabled(true);
        if (!written) {
            m_general->setText(tr("Not saved: %1").arg(written.error()));
            m_general->show();
            return;
        }
        m_secrets.clear();
        emit saved();
        accept();
    });
}

void SettingsDialog::testConnection()
{
    if (m_check)
        return;
    m_checkSteps->clear();
    m_checkSteps->show();
    // The environment as the form has it now, validated as a save would.
    const EnvironmentDocument doc = document();
    const QString name = m_name->text().trimmed();
    const QString path = targetPath();
    const Expected<EnvironmentSet> set =
        parseEnvironments(doc.text(), path, QFileInfo(path).absoluteDir());
    const Environment *env = set ? set->find(name) : nullptr;
    if (!env) {
        QString why = !set           ? set.error()
            : set->findInvalid(name) ? set->findInvalid(name)->reason
                                     : tr("no environment \"%1\"").arg(name);
        m_checkSummary->setText(tr("Fix the environment first: %1").arg(why));
        m_checkSteps->hide();
        return;
    }
    m_check = new ConnectionCheck(*env, this);
    for (const ConnectionCheck::Step &step : m_check->steps()) {
        auto *item = new QTreeWidgetItem(m_checkSteps);
        item->setText(0, ConnectionCheck::nameOf(step.stage));
        item->setText(1, ConnectionCheck::nameOf(step.result));
    }
    m_test->setEnabled(false);
    m_checkSummary->setText(tr("Testing the connection to the engine of %1…").arg(name));
    connect(m_check, &ConnectionCheck::stepChanged, this, &SettingsDialog::showCheckStep);
    connect(m_check, &ConnectionCheck::finished, this, [this, name](bool ok) {
        m_test->setEnabled(true);
        QString failed;
        for (const ConnectionCheck::Step &step : m_check->steps()) {
            if (step.result == ConnectionCheck::Result::Failed && failed.isEmpty())
                failed = tr("%1 failed: %2").arg(ConnectionCheck::nameOf(step.stage), step.detail);
        }
        // The failed stage's words in full, where they wrap and can be copied.
        m_checkSummary->setText(ok ? tr("%1: the engine is reachable.").arg(name) : failed);
        m_check->deleteLater();
        m_check = nullptr;
    });
    m_check->start();
}

void SettingsDialog::showCheckStep(int index)
{
    QTreeWidgetItem *item = m_checkSteps->topLevelItem(index);
    if (!item || !m_check)
        return;
    const ConnectionCheck::Step &step = m_check->steps().at(index);
    item->setText(1, ConnectionCheck::nameOf(step.result));
    item->setText(2, step.detail);
    item->setToolTip(2, step.detail);
    const Tone tone = step.result == ConnectionCheck::Result::Passed ? Tone::Good
        : step.result == ConnectionCheck::Result::Failed             ? Tone::Bad
                                                                     : Tone::Neutral;
    item->setForeground(1, colourOf(tone));
}

} // namespace pilothouse::gui
