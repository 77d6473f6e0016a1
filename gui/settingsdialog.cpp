#include "settingsdialog.h"

#include "core/secrets.h"
#include "core/workspace.h"
#include "env/environment.h"
#include "style.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
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
#include <QScrollArea>
#include <QSplitter>
#include <QTableWidget>
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
    , m_timeout(new QDoubleSpinBox(this))
{
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
    m_passwordSource->addItem(tr("libpq: ~/.pgpass or PGPASSWORD"), QStringLiteral("libpq"));
    m_passwordSource->addItem(tr("an environment variable"), QStringLiteral("env"));
    m_passwordSource->addItem(tr("the system keychain"), QStringLiteral("keychain"));
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
    addField(compose, QStringLiteral("docker.host"), tr("Docker &host"), m_dockerHost,
             tr("empty: this machine; or ssh://user@host, tcp://host:2376"));
    addField(compose, QStringLiteral("docker.context"), tr("Docker conte&xt"), m_dockerContext,
             tr("or a named context instead of a host"));
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
    auto *where = new QLabel(tr("Saved to %1").arg(targetPath()), this);
    if (workspace->isFallback() && QFileInfo::exists(targetPath()))
        where->setText(
            tr("Saved to %1; the file there now, which has problems, is kept next to "
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
    m_current = row;
    clearErrors();
    const EnvironmentFields f = row >= 0 ? m_document.fields(row) : EnvironmentFields {};
    m_name->setText(f.name);
    m_kind->setCurrentIndex(f.kind == QLatin1String("compose") ? 1 : 0);
    m_description->setText(f.description);
    m_files->setPlainText(f.composeFiles.join(QLatin1Char('\n')));
    m_project->setText(f.project);
    m_envFile->setText(f.envFile);
    m_dockerHost->setText(f.dockerHost);
    m_dockerContext->setText(f.dockerContext);
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
    m_timeout->setValue(f.deployTimeoutSeconds);
    updateKind();
}

void SettingsDialog::updateKind()
{
    const bool compose = m_kind->currentData().toString() == QLatin1String("compose");
    m_composeBox->setVisible(compose);
    m_nativeBox->setVisible(!compose);
    const QString pw = m_passwordSource->currentData().toString();
    m_passwordEnv->setEnabled(pw == QLatin1String("env"));
    m_password->setEnabled(pw == QLatin1String("keychain"));
    const QString token = m_tokenSource->currentData().toString();
    m_tokenEnv->setEnabled(token == QLatin1String("env"));
    m_token->setEnabled(token == QLatin1String("keychain"));
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
    f.dockerHost = m_dockerHost->text();
    f.dockerContext = m_dockerContext->text();
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

void SettingsDialog::save()
{
    if (m_saving)
        return;
    clearErrors();
    store();
    const QString path = targetPath();
    const QList<EnvironmentDocument::Issue> issues = m_document.issues(path);
    if (!issues.isEmpty()) {
        const QString here = m_current >= 0 ? m_name->text().trimmed() : QString();
        QStringList elsewhere;
        for (const EnvironmentDocument::Issue &issue : issues) {
            // Next to its field when it is about the environment shown.
            if (issue.environment != here || issue.field.isEmpty() ||
                !m_fields.contains(issue.field)) {
                elsewhere << (issue.environment.isEmpty()
                                  ? issue.message
                                  : tr("%1: %2%3")
                                        .arg(issue.environment,
                                             issue.path.isEmpty()
                                                 ? QString()
                                                 : issue.path + QStringLiteral(": "),
                                             issue.message));
                continue;
            }
            QLabel *error = m_fields.value(issue.field).error;
            const QString text = issue.path == issue.field
                ? issue.message
                : QStringLiteral("%1: %2").arg(issue.path, issue.message);
            error->setText(error->text().isEmpty() ? text
                                                   : error->text() + QLatin1Char('\n') + text);
            error->show();
        }
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

} // namespace pilothouse::gui
