#pragma once

#include "core/result.h"

#include <QByteArray>
#include <QHash>
#include <QJsonArray>
#include <QJsonObject>
#include <QList>
#include <QObject>
#include <QString>
#include <QStringList>
#include <functional>

// The environments file as a document, for editing: the JSON as written
// (unknown keys, ${VARIABLES} and order stay), each environment's editable
// fields as typed values with the file's defaults, the validation issues
// attached to those fields, and the save transaction. A form (the settings
// dialog) only binds widgets to it; pilothousectl or a test can edit the
// same way without widgets.
namespace pilothouse {

// Where a secret comes from.
enum class SecretSource { None, Variable, Keychain };

// One environment's editable fields.
struct EnvironmentFields
{
    QString name;
    QString kind = QStringLiteral("compose"); // "compose" or "native"
    QString description;
    // compose
    QStringList composeFiles;
    QString project;
    QString envFile;
    QString dockerHost;
    QString dockerContext;
    QString identityFile; // docker.identityFile, for an ssh:// host
    // native: the processes list as JSON text (edited as text; a text that is
    // not a list is kept as written, so validation names the field)
    QString processes;
    // services: one row per health endpoint (a row without a URL: a service
    // watched without one)
    struct Endpoint
    {
        QString service;
        QString url;
        QString intervalSeconds; // as typed; validation says what is wrong
        QString timeoutSeconds;
    };
    QList<Endpoint> endpoints;
    // database
    QString dsn;
    SecretSource passwordSource = SecretSource::None;
    QString passwordEnv;
    // image
    QString repository;
    QStringList imageServices;
    QString registryUser;
    SecretSource tokenSource = SecretSource::None;
    QString tokenEnv;
    // deploy (the defaults are Environment's own)
    double healthWindowSeconds = defaultHealthWindowSeconds();
    double deployTimeoutSeconds = defaultDeployTimeoutSeconds();
    QString strategy; // deploy.strategy: "recreate", "start-first"; empty: not set (recreate)

    static double defaultHealthWindowSeconds();
    static double defaultDeployTimeoutSeconds();
};

class EnvironmentDocument
{
public:
    // Text that is not a JSON object gives an empty document (the first save
    // then writes a valid one).
    explicit EnvironmentDocument(const QByteArray &text = {});

    int size() const { return int(m_environments.size()); }
    QString name(int index) const;
    int indexOf(const QString &name) const;
    EnvironmentFields fields(int index) const;
    // Replaces what the fields cover; every other key stays as written.
    void setFields(int index, const EnvironmentFields &fields);
    // A new compose environment with a name not taken yet; returns its index.
    int add();
    void remove(int index);
    QByteArray text() const;

    // The form's field keys, in the order a form lays them out.
    static const QStringList &fieldKeys();
    // The form field an issue's path belongs to ("services[0].health[1].url"
    // -> "services", "compose.files[2]" -> "compose.files"); empty when none.
    static QString fieldFor(const QString &issuePath);

    struct Issue
    {
        QString environment; // empty: the file itself
        QString field; // a fieldKeys() entry, or empty (shown for the whole form)
        QString path; // as validation names it
        QString message;
    };
    // Validation of the whole text as it would be saved to `path`.
    QList<Issue> issues(const QString &path) const;

    // The save transaction: validated first (nothing happens when invalid);
    // then the secrets go to the keychain (if it refuses, nothing is
    // written); then, when keepBroken, the old file is kept as <path>.broken;
    // then the new text is written atomically. `done` comes on `context`.
    struct Save
    {
        QString path;
        QHash<QString, QString> secrets; // keychain key -> value
        bool keepBroken = false;
    };
    void save(const Save &request, QObject *context, std::function<void(Outcome)> done) const;

private:
    QJsonObject m_root;
    QJsonArray m_environments;
};

} // namespace pilothouse
