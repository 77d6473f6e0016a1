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
#include <QJsonArray>
#include <QJsonDocument>
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

constexpr double kDefaultWindow = 10;
constexpr double kDefaultTimeout = 120;

QString str(const QJsonObject &o, const char *key)
{
    return o.value(QLatin1String(key)).toString();
}

// "a.b" of an object, or {} when missing.
QJsonObject sub(const QJsonObject &o, const char *key)
{
    return o.value(QLatin1String(key)).toObject();
}

void setOrRemove(QJsonObject &o, const QString &key, const QString &value)
{
    if (value.trimmed().isEmpty())
        o.remove(key);
    else
        o.insert(key, value.trimmed());
}

void setObject(QJsonObject &o, const QString &key, const QJsonObject &value)
{
    if (value.isEmpty())
        o.remove(key);
    else
        o.insert(key, value);
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
    m_root = QJsonDocument::fromJson(workspace->configText()).object();
    m_environments = m_root.value(u"environments").toArray();
    if (workspace->isBuiltIn()) {
        for (qsizetype i = 0; i < m_environments.size(); ++i) {
            QJsonObject e = m_environments.at(i).toObject();
            const Environment *parsed = workspace->environments().find(str(e, "name"));
            QJsonObject compose = sub(e, "compose");
            if (parsed && !compose.isEmpty()) {
                compose.insert(QStringLiteral("files"),
                               QJsonArray::fromStringList(parsed->composeFiles));
                e.insert(QStringLiteral("compose"), compose);
                m_environments.replace(i, e);
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

    for (const QJsonValue &v : std::as_const(m_environments))
        m_list->addItem(str(v.toObject(), "name"));
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
    const QJsonObject e = row >= 0 ? m_environments.at(row).toObject() : QJsonObject {};
    m_name->setText(str(e, "name"));
    m_kind->setCurrentIndex(str(e, "kind") == QLatin1String("compose") ? 1 : 0);
    m_description->setText(str(e, "description"));
    const QJsonObject compose = sub(e, "compose");
    QStringList files;
    for (const QJsonValue &f : compose.value(u"files").toArray())
        files << f.toString();
    m_files->setPlainText(files.join(QLatin1Char('\n')));
    m_project->setText(str(compose, "project"));
    m_envFile->setText(str(compose, "envFile"));
    m_dockerHost->setText(str(sub(e, "docker"), "host"));
    m_dockerContext->setText(str(sub(e, "docker"), "context"));
    m_processes->setPlainText(
        e.contains(u"processes")
            ? QString::fromUtf8(QJsonDocument(e.value(u"processes").toArray()).toJson())
            : QString());
    m_services->setRowCount(0);
    for (const QJsonValue &sv : e.value(u"services").toArray()) {
        const QJsonObject s = sv.toObject();
        const QJsonArray health = s.value(u"health").toArray();
        const auto addRow = [this, &s](const QJsonObject &h) {
            const int r = m_services->rowCount();
            m_services->insertRow(r);
            m_services->setItem(r, 0, new QTableWidgetItem(str(s, "name")));
            m_services->setItem(r, 1, new QTableWidgetItem(str(h, "url")));
            m_services->setItem(
                r, 2,
                new QTableWidgetItem(h.contains(u"intervalSeconds")
                                         ? QString::number(h.value(u"intervalSeconds").toDouble())
                                         : QString()));
            m_services->setItem(
                r, 3,
                new QTableWidgetItem(h.contains(u"timeoutSeconds")
                                         ? QString::number(h.value(u"timeoutSeconds").toDouble())
                                         : QString()));
        };
        if (health.isEmpty())
            addRow({});
        for (const QJsonValue &h : health)
            addRow(h.toObject());
    }
    const QJsonObject db = sub(e, "database");
    m_dsn->setText(str(db, "dsn"));
    m_passwordSource->setCurrentIndex(db.value(u"keychain").toBool()    ? 2
                                          : db.contains(u"passwordEnv") ? 1
                                                                        : 0);
    m_passwordEnv->setText(str(db, "passwordEnv"));
    m_password->clear();
    const QJsonObject image = sub(e, "image");
    m_repository->setText(str(image, "repository"));
    QStringList imageServices;
    for (const QJsonValue &v : image.value(u"services").toArray())
        imageServices << v.toString();
    if (imageServices.isEmpty() && image.contains(u"service"))
        imageServices << str(image, "service");
    m_imageService->setText(imageServices.join(QStringLiteral(", ")));
    m_registryUser->setText(str(image, "user"));
    m_tokenSource->setCurrentIndex(image.value(u"keychain").toBool() ? 2
                                       : image.contains(u"tokenEnv") ? 1
                                                                     : 0);
    m_tokenEnv->setText(str(image, "tokenEnv"));
    m_token->clear();
    const QJsonObject deploy = sub(e, "deploy");
    m_window->setValue(deploy.value(u"healthWindowSeconds").toDouble(kDefaultWindow));
    m_timeout->setValue(deploy.value(u"timeoutSeconds").toDouble(kDefaultTimeout));
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

QJsonObject SettingsDialog::formToJson(const QJsonObject &raw) const
{
    QJsonObject e = raw;
    e.insert(QStringLiteral("name"), m_name->text().trimmed());
    const QString kind = m_kind->currentData().toString();
    e.insert(QStringLiteral("kind"), kind);
    setOrRemove(e, QStringLiteral("description"), m_description->text());
    if (kind == QLatin1String("compose")) {
        e.remove(QStringLiteral("processes"));
        QJsonObject compose = sub(raw, "compose");
        QJsonArray files;
        for (const QString &f : m_files->toPlainText().split(QLatin1Char('\n'), Qt::SkipEmptyParts))
            files.append(f.trimmed());
        compose.insert(QStringLiteral("files"), files);
        compose.insert(QStringLiteral("project"), m_project->text().trimmed());
        setOrRemove(compose, QStringLiteral("envFile"), m_envFile->text());
        e.insert(QStringLiteral("compose"), compose);
        QJsonObject docker = sub(raw, "docker");
        setOrRemove(docker, QStringLiteral("host"), m_dockerHost->text());
        setOrRemove(docker, QStringLiteral("context"), m_dockerContext->text());
        setObject(e, QStringLiteral("docker"), docker);
    } else {
        e.remove(QStringLiteral("compose"));
        e.remove(QStringLiteral("docker"));
        const QByteArray text = m_processes->toPlainText().toUtf8();
        const QJsonDocument doc = QJsonDocument::fromJson(text);
        // Not a list: kept as written, so validation names the field.
        e.insert(QStringLiteral("processes"),
                 doc.isArray() ? QJsonValue(doc.array()) : QJsonValue(QString::fromUtf8(text)));
    }
    // Services: rows of one name are that service's endpoints.
    QJsonArray services;
    QHash<QString, qsizetype> at;
    for (int r = 0; r < m_services->rowCount(); ++r) {
        const auto cell = [this, r](int c) {
            const QTableWidgetItem *i = m_services->item(r, c);
            return i ? i->text().trimmed() : QString();
        };
        const QString name = cell(0);
        if (name.isEmpty() && cell(1).isEmpty())
            continue;
        if (!at.contains(name)) {
            at.insert(name, services.size());
            services.append(QJsonObject { { QStringLiteral("name"), name } });
        }
        if (cell(1).isEmpty())
            continue;
        QJsonObject h { { QStringLiteral("url"), cell(1) } };
        bool ok = false;
        if (const double v = cell(2).toDouble(&ok); ok)
            h.insert(QStringLiteral("intervalSeconds"), v);
        else if (!cell(2).isEmpty())
            h.insert(QStringLiteral("intervalSeconds"), cell(2)); // validation says why
        if (const double v = cell(3).toDouble(&ok); ok)
            h.insert(QStringLiteral("timeoutSeconds"), v);
        else if (!cell(3).isEmpty())
            h.insert(QStringLiteral("timeoutSeconds"), cell(3));
        QJsonObject s = services.at(at.value(name)).toObject();
        QJsonArray list = s.value(u"health").toArray();
        list.append(h);
        s.insert(QStringLiteral("health"), list);
        services.replace(at.value(name), s);
    }
    if (services.isEmpty())
        e.remove(QStringLiteral("services"));
    else
        e.insert(QStringLiteral("services"), services);

    QJsonObject db = sub(raw, "database");
    db.remove(QStringLiteral("passwordEnv"));
    db.remove(QStringLiteral("keychain"));
    setOrRemove(db, QStringLiteral("dsn"), m_dsn->text());
    const QString pw = m_passwordSource->currentData().toString();
    if (pw == QLatin1String("env"))
        db.insert(QStringLiteral("passwordEnv"), m_passwordEnv->text().trimmed());
    else if (pw == QLatin1String("keychain"))
        db.insert(QStringLiteral("keychain"), true);
    if (!db.contains(u"dsn") && db.size() == 0)
        e.remove(QStringLiteral("database"));
    else
        e.insert(QStringLiteral("database"), db);

    QJsonObject image = sub(raw, "image");
    image.remove(QStringLiteral("tokenEnv"));
    image.remove(QStringLiteral("keychain"));
    setOrRemove(image, QStringLiteral("repository"), m_repository->text());
    // Written in the current form (image.services), whichever form was read.
    image.remove(QStringLiteral("service"));
    image.remove(QStringLiteral("services"));
    QJsonArray imageServices;
    for (const QString &name : m_imageService->text().split(u',', Qt::SkipEmptyParts)) {
        if (!name.trimmed().isEmpty())
            imageServices.append(name.trimmed());
    }
    if (!imageServices.isEmpty())
        image.insert(QStringLiteral("services"), imageServices);
    setOrRemove(image, QStringLiteral("user"), m_registryUser->text());
    const QString token = m_tokenSource->currentData().toString();
    if (token == QLatin1String("env"))
        image.insert(QStringLiteral("tokenEnv"), m_tokenEnv->text().trimmed());
    else if (token == QLatin1String("keychain"))
        image.insert(QStringLiteral("keychain"), true);
    setObject(e, QStringLiteral("image"), image);

    QJsonObject deploy = sub(raw, "deploy");
    deploy.remove(QStringLiteral("healthWindowSeconds"));
    deploy.remove(QStringLiteral("timeoutSeconds"));
    if (!qFuzzyCompare(m_window->value(), kDefaultWindow))
        deploy.insert(QStringLiteral("healthWindowSeconds"), m_window->value());
    if (!qFuzzyCompare(m_timeout->value(), kDefaultTimeout))
        deploy.insert(QStringLiteral("timeoutSeconds"), m_timeout->value());
    setObject(e, QStringLiteral("deploy"), deploy);
    return e;
}

void SettingsDialog::store()
{
    if (m_current < 0 || m_current >= m_environments.size())
        return;
    const QJsonObject e = formToJson(m_environments.at(m_current).toObject());
    m_environments.replace(m_current, e);
    const QString name = str(e, "name");
    // Typed secrets wait here (never in the file) until a valid save.
    if (!m_password->text().isEmpty())
        m_secrets.insert(name + QStringLiteral("/database"), m_password->text());
    if (!m_token->text().isEmpty())
        m_secrets.insert(name + QStringLiteral("/registry"), m_token->text());
}

QByteArray SettingsDialog::documentText() const
{
    QJsonObject root = m_root;
    root.insert(QStringLiteral("version"), 1);
    QJsonArray envs = m_environments;
    if (m_current >= 0 && m_current < envs.size())
        envs.replace(m_current, formToJson(envs.at(m_current).toObject()));
    root.insert(QStringLiteral("environments"), envs);
    return QJsonDocument(root).toJson(QJsonDocument::Indented);
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
    QString name = QStringLiteral("new");
    for (int n = 2; !m_list->findItems(name, Qt::MatchExactly).isEmpty(); ++n)
        name = QStringLiteral("new-%1").arg(n);
    m_environments.append(QJsonObject { { QStringLiteral("name"), name },
                                        { QStringLiteral("kind"), QStringLiteral("compose") },
                                        { QStringLiteral("compose"),
                                          QJsonObject { { QStringLiteral("files"), QJsonArray {} },
                                                        { QStringLiteral("project"), name } } } });
    m_list->addItem(name);
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
    m_environments.removeAt(row);
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
    const QByteArray json = documentText();
    const QString path = targetPath();
    const QList<EnvironmentIssue> issues =
        environmentIssues(json, path, QFileInfo(path).absoluteDir());
    if (!issues.isEmpty()) {
        const QString here = m_current >= 0 ? m_name->text().trimmed() : QString();
        QStringList elsewhere;
        for (const EnvironmentIssue &issue : issues) {
            // The longest field key the issue's field starts with.
            QString best;
            if (issue.environment == here) {
                for (auto it = m_fields.cbegin(); it != m_fields.cend(); ++it) {
                    const QString &key = it.key();
                    const bool match = issue.field == key ||
                        issue.field.startsWith(key + QLatin1Char('.')) ||
                        issue.field.startsWith(key + QLatin1Char('['));
                    if (match && key.size() > best.size())
                        best = key;
                }
                if (best.isEmpty() && issue.field.startsWith(QLatin1String("compose")))
                    best = QStringLiteral("compose.files");
                if (best.isEmpty() && issue.field.startsWith(QLatin1String("docker")))
                    best = QStringLiteral("docker.host");
                if (best.isEmpty() && issue.field.startsWith(QLatin1String("database")))
                    best = QStringLiteral("database.dsn");
                if (best.isEmpty() && issue.field.startsWith(QLatin1String("image")))
                    best = QStringLiteral("image.repository");
                if (best.isEmpty() && issue.field.startsWith(QLatin1String("deploy")))
                    best = QStringLiteral("deploy.timeoutSeconds");
            }
            if (best.isEmpty()) {
                elsewhere << (issue.environment.isEmpty()
                                  ? issue.message
                                  : tr("%1: %2%3")
                                        .arg(issue.environment,
                                             issue.field.isEmpty()
                                                 ? QString()
                                                 : issue.field + QStringLiteral(": "),
                                             issue.message));
                continue;
            }
            QLabel *error = m_fields.value(best).error;
            const QString text = issue.field == best
                ? issue.message
                : QStringLiteral("%1: %2").arg(issue.field, issue.message);
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
    // Secrets first: if the keychain refuses, the file stays as it was.
    if (m_secrets.isEmpty()) {
        finishSave(json);
        return;
    }
    m_saving = true;
    m_save->setEnabled(false);
    auto pending = std::make_shared<int>(int(m_secrets.size()));
    auto failed = std::make_shared<QStringList>();
    for (auto it = m_secrets.cbegin(); it != m_secrets.cend(); ++it) {
        writeSecret(
            it.key(), it.value(), this, [this, json, pending, failed, key = it.key()](Outcome r) {
                if (!r)
                    *failed << tr("%1: %2").arg(key, r.error());
                if (--*pending > 0)
                    return;
                m_saving = false;
                m_save->setEnabled(true);
                if (!failed->isEmpty()) {
                    m_general->setText(tr("Not saved: the keychain did not take the secrets:\n%1")
                                           .arg(failed->join(QLatin1Char('\n'))));
                    m_general->show();
                    return;
                }
                m_secrets.clear();
                finishSave(json);
            });
    }
}

void SettingsDialog::finishSave(const QByteArray &json)
{
    // This form started from the built-in environments because the file had
    // problems: keep that file rather than lose what it held.
    if (m_workspace && m_workspace->isFallback() && QFileInfo::exists(targetPath())) {
        const QString backup = targetPath() + QStringLiteral(".broken");
        QFile::remove(backup);
        if (!QFile::copy(targetPath(), backup)) {
            m_general->setText(tr("Not saved: could not keep the old file as %1").arg(backup));
            m_general->show();
            return;
        }
    }
    const Outcome written = saveEnvironmentsFile(targetPath(), json);
    if (!written) {
        m_general->setText(tr("Not saved: %1").arg(written.error()));
        m_general->show();
        return;
    }
    emit saved();
    accept();
}

} // namespace pilothouse::gui
