#pragma once

#include "env/environmentdocument.h"

#include <QDialog>
#include <QHash>
#include <QPointer>
#include <QTimer>

class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QGroupBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTreeWidget;

namespace pilothouse {
class ConnectionCheck;
class Workspace;
} // namespace pilothouse

namespace pilothouse::gui {

// Add and edit environments: widgets bound to the environments file as a
// document (model/env/environmentdocument.h), which keeps the file as written
// (unknown keys, ${VARIABLES} and order stay), knows each field's type and
// default, says which field each validation problem belongs to, and runs the
// save (secrets to the system keychain, never into the file; nothing written
// until all is valid).
class SettingsDialog final : public QDialog
{
    Q_OBJECT
public:
    explicit SettingsDialog(Workspace *workspace, const QString &select = {},
                            QWidget *parent = nullptr);

    // Where a save goes: the --config file, else the user's file (made from
    // the built-in one if need be).
    QString targetPath() const;

    void selectEnvironment(const QString &name);
    // Validates and, when everything is valid, stores secrets and writes the file.
    void save();
    void addEnvironment();
    void removeEnvironment();

    // The message shown next to a field ("compose.project", "name", ...); empty if none.
    QString errorFor(const QString &field) const;
    QString generalError() const;
    QWidget *fieldWidget(const QString &field) const;
    QByteArray documentText() const; // what a save would write
    // "Test connection": checks the environment as the form has it now
    // (saved or not), stage by stage, into the list under the button.
    void testConnection();

signals:
    void saved();

private:
    struct Field
    {
        QWidget *widget = nullptr;
        QLabel *error = nullptr;
    };
    QWidget *addField(QFormLayout *form, const QString &key, const QString &label, QWidget *w,
                      const QString &help = {});
    void load(int row);
    void store(); // the form into the document's current environment
    EnvironmentFields formFields() const;
    EnvironmentDocument document() const; // with what the form holds now
    void showIssues();
    void clearErrors();
    // Shows each issue of the environment shown next to its field; returns
    // the others, as lines.
    QStringList placeIssues(const QList<EnvironmentDocument::Issue> &issues);
    void validateLive();
    void updateKind();
    void updateEngine();
    // docker.host from the SSH fields (ssh://user@host:port).
    QString sshHostUrl() const;
    void showCheckStep(int index);

    QPointer<Workspace> m_workspace;
    EnvironmentDocument m_document;
    int m_current = -1;
    QHash<QString, Field> m_fields;
    QStringList m_fieldOrder; // as laid out, for "the first field with a problem"
    QLabel *m_general;
    QListWidget *m_list;
    QLineEdit *m_name;
    QComboBox *m_kind;
    QLineEdit *m_description;
    QGroupBox *m_composeBox;
    QPlainTextEdit *m_files;
    QLineEdit *m_project;
    QLineEdit *m_envFile;
    QLineEdit *m_dockerHost;
    QLineEdit *m_dockerContext;
    QComboBox *m_engine;
    QFormLayout *m_composeForm = nullptr;
    QLineEdit *m_sshHost;
    QLineEdit *m_sshUser;
    QSpinBox *m_sshPort;
    QLineEdit *m_identityFile;
    QPushButton *m_test;
    QTreeWidget *m_checkSteps;
    QLabel *m_checkSummary;
    QPointer<ConnectionCheck> m_check;
    QString m_urlHost; // docker.host as typed for a tcp:// or unix:// engine
    QGroupBox *m_nativeBox;
    QPlainTextEdit *m_processes;
    QTableWidget *m_services;
    QLineEdit *m_dsn;
    QComboBox *m_passwordSource;
    QLineEdit *m_passwordEnv;
    QLineEdit *m_password;
    QLineEdit *m_repository;
    QLineEdit *m_imageService;
    QLineEdit *m_registryUser;
    QComboBox *m_tokenSource;
    QLineEdit *m_tokenEnv;
    QLineEdit *m_token;
    QDoubleSpinBox *m_window;
    QComboBox *m_strategy;
    QDoubleSpinBox *m_timeout;
    QPushButton *m_save;
    // Typed secrets, by keychain key, written only on a valid save.
    QHash<QString, QString> m_secrets;
    bool m_saving = false;
    bool m_loading = false; // a load() fills the form: no live check
    QTimer m_liveCheck;
};

} // namespace pilothouse::gui
