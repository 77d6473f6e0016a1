#pragma once

#include "core/result.h"

#include <QDir>
#include <QList>
#include <QMap>
#include <QMetaType>
#include <QString>
#include <QStringList>
#include <QUrl>
#include <optional>
#include <utility>

// Environments: where a stack runs and how the panel reaches it. Loaded from a
// JSON file (see resources/environments/README.md for the format), validated
// as a whole before anything acts on it.
namespace pilothouse {

enum class EnvironmentKind { Native, Compose, Swarm };

QString toString(EnvironmentKind kind);

struct HealthEndpoint
{
    QUrl url;
    int intervalMs = 1000;
    int timeoutMs = 2000;
    // The URL as the remote host sees it (http://127.0.0.1:8000/readyz on
    // the engine's host), reached through the environment's SSH connection.
    bool internal = false;
};

struct WatchedService
{
    QString name;
    QList<HealthEndpoint> endpoints;
};

// A process the native driver supervises.
struct NativeProcess
{
    QString name;
    QString program; // a bare name is looked up next to the panel, in the build tree, on PATH
    QStringList arguments;
    QMap<QString, QString> environment;
    QString workingDirectory;
    int stopGraceMs = 10000;
};

struct DatabaseTarget
{
    // postgresql://user@host:port/db[?sslmode=...] or sqlite:///abs/path; never a password.
    QUrl dsn;
    // Name of an environment variable that holds the password (optional; libpq's
    // ~/.pgpass and PGPASSWORD apply otherwise).
    QString passwordEnv;
    // Or: the password is in the system keychain under this key ("<env>/database").
    QString keychainKey;
    // A PostgreSQL that runs in the compose stack itself (database.compose),
    // unpublished: reached at its container's address on the stack's network
    // (re-read after every recreate), with the user, password and database
    // the stack itself uses (the environment, then the project's .env, then
    // the compose file's default). The password is never copied elsewhere.
    struct InStack
    {
        QString service;
        QString userVariable = QStringLiteral("POSTGRES_USER");
        QString passwordVariable = QStringLiteral("POSTGRES_PASSWORD");
        QString databaseVariable = QStringLiteral("POSTGRES_DB");
        int port = 5432;
    };
    std::optional<InStack> inStack;
    bool isSqlite() const { return dsn.scheme() == QLatin1String("sqlite"); }
    QString displayDsn() const; // safe to show: has no password by construction
    // The libpq options of the URL's query that validation allows (sslmode,
    // sslrootcert, target_session_attrs, application_name), as key and value.
    QList<std::pair<QString, QString>> options() const;
};

struct Environment
{
    QString name;
    EnvironmentKind kind = EnvironmentKind::Native;
    QString description;

    // compose, and swarm (the stack's files and the stack's name)
    QStringList composeFiles; // absolute
    QString project;
    QString envFile; // absolute, optional
    QString dockerContext;
    QString dockerHost;
    // The key for an ssh:// host (docker.identityFile, absolute); empty: ssh's
    // own choice (agent, ~/.ssh/config, the default keys).
    QString sshIdentityFile;

    // swarm: the secrets the panel makes before a stack deploy when the
    // engine lacks them (swarm.secrets): the key the stack file declares,
    // and the value as a template of the stack's variables ("${NAME}").
    QList<std::pair<QString, QString>> swarmSecrets;
    QString stackName() const { return project; }

    // native
    QList<NativeProcess> processes;

    QList<WatchedService> services;
    std::optional<DatabaseTarget> database;
    QString imageRepository; // e.g. ghcr.io/pilothouse/deckhand
    // Every service that runs imageRepository (image.services; the older
    // image.service names one): a deployment moves them together, through one
    // gate, into one history row. The first is the primary one: its endpoint
    // tells which schema version the build expects.
    QStringList imageServices;
    QString backendService() const { return imageServices.value(0); }
    // Where the tags a person picks come from (image.source): the registry
    // (pinned by digest), or the engine's own images of the repository, as
    // `pilothousectl build` makes them from a checkout (pinned by image id;
    // no registry needed).
    enum class ImageSource { Registry, Engine };
    ImageSource imageSource = ImageSource::Registry;
    bool tagsFromEngine() const { return imageSource == ImageSource::Engine; }
    // The folder of the first compose file: compose's project folder, where
    // .env, .env.example and the build context are.
    QString stackDirectory() const;
    // The compose variables that choose the backend's image: the panel passes
    // the repository and the tag through them, never editing compose files.
    QString repositoryVariable = QStringLiteral("DECKHAND_IMAGE");
    QString tagVariable = QStringLiteral("DECKHAND_TAG");
    // Registry credentials for a private repository (optional): a user name
    // and where its token comes from, an environment variable or the keychain.
    QString registryUser;
    QString registryTokenEnv;
    QString registryKeychainKey; // "<env>/registry" when image.keychain is true
    // A token service on another host than the registry that may receive
    // those credentials (image.tokenRealm); by default only the registry's own.
    QString registryTokenRealm;

    // Deployments: how long the new tag must stay healthy, and how long it
    // may take to get there before the panel reverts it.
    int healthWindowMs = 10000;
    int deployTimeoutMs = 120000;
    // How a deployment moves the image's services (deploy.strategy):
    // recreate stops the old container before the new one starts (a short
    // outage); start-first starts the new one next to it, gates it, then
    // drains and removes the old one (needs a proxy in front that owns the
    // published port, as this repository's compose.yaml has).
    enum class Rollout { Recreate, StartFirst };
    Rollout rollout = Rollout::Recreate;
    // start-first: the port the image's HTTP endpoints listen on inside the
    // container (deploy.containerPort), where the gate checks a new
    // container directly; 0: the port of the service's health URL.
    int containerPort = 0;

    bool usesDocker() const { return kind != EnvironmentKind::Native; }
    // A remote engine (ssh:// or tcp:// host, or a named context).
    bool isRemote() const;
};

// One problem found in an environments file, with where it is.
struct EnvironmentIssue
{
    QString environment; // empty: the file itself
    QString field; // "compose.project", "services[0].health[0].url", ...
    QString message;
};

// An environment the file defines that cannot be used as it is (a compose
// file that is not there, a bad field): listed with its reason, while the
// others work.
struct InvalidEnvironment
{
    QString name;
    QString kind;
    QString description;
    QString reason; // one line per problem, each naming its field
    // It is a built-in environment whose stack folder was not found.
    bool needsStackFolder = false;
};

struct EnvironmentSet
{
    QString source; // the file it came from, for messages
    QList<Environment> environments;
    QList<InvalidEnvironment> invalid;

    const Environment *find(const QString &name) const;
    const InvalidEnvironment *findInvalid(const QString &name) const;
    QStringList names() const;
};

// Where the environments come from: an explicit path wins, then the user's copy
// under AppConfigLocation, then the defaults shipped in the resources.
QString userEnvironmentsPath();
QString defaultEnvironmentsResource();
QString resolveEnvironmentsPath(const QString &explicitPath);

// Loads and validates a file. Relative paths in it resolve against the file's
// folder (for the built-in defaults: the stack folder, see below). A problem
// of the file itself (not JSON, no list, a name twice) fails the load; an
// environment with problems of its own goes to EnvironmentSet::invalid and
// the others load.
Expected<EnvironmentSet> loadEnvironments(const QString &path);

// The folder with this project's stack (compose.yaml, .env.example, the
// Dockerfile and what it builds from), which the built-in environments name.
// In order: the folder the user chose (setStackFolder, remembered in the
// settings), the checkout this build was made from, the current folder when
// it is such a checkout. Empty when none is there (an installed Pilothouse
// whose source tree is gone, and nothing chosen yet).
struct StackFolder
{
    QString path;
    QString from; // "chosen", "checkout", "current folder"
};
StackFolder stackFolder();
// Whether a folder holds the stack (compose.yaml and .env.example).
bool isStackFolder(const QString &path);
// Remembers the user's choice (an empty path forgets it); refuses a folder
// without the stack, saying what is missing.
Outcome setStackFolder(const QString &path);
// Validates JSON text; every problem is reported at once, one per line, each
// naming the source, the environment and the field.
Expected<EnvironmentSet> parseEnvironments(const QByteArray &json, const QString &source,
                                           const QDir &baseDir);

// The same checks, as a list a form can show next to each field; empty when
// the text is valid.
QList<EnvironmentIssue> environmentIssues(const QByteArray &json, const QString &source,
                                          const QDir &baseDir);

// Writes an environments file atomically (a failed write leaves the old file
// whole) after validating it; nothing is written when it is not valid.
Outcome saveEnvironmentsFile(const QString &path, const QByteArray &json);

// The endpoint of a Docker context ("ssh://deploy@host", "unix:///…"), read
// from the Docker CLI's context store; empty when there is no such context.
QString dockerContextHost(const QString &name);

// Names checked before they reach any command line.
bool isValidEnvironmentName(const QString &name);
bool isValidProjectName(const QString &name); // compose: [a-z0-9][a-z0-9_-]*
bool isValidServiceName(const QString &name); // compose: [a-zA-Z0-9][a-zA-Z0-9_.-]*
bool isValidImageTag(const QString &tag); // OCI: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}

} // namespace pilothouse

Q_DECLARE_METATYPE(pilothouse::DatabaseTarget)
