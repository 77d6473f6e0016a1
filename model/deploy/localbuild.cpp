#include "deploy/localbuild.h"

#include "drivers/composedriver.h"

#include <QDir>
#include <QRegularExpression>
#include <QTemporaryDir>

namespace pilothouse {

namespace {

constexpr int kGitTimeoutMs = 60000;
constexpr int kBuildTimeoutMs = 3600000; // a cold build compiles Qt code
constexpr int kTailLines = 12;

const QRegularExpression &buildTagPattern()
{
    static const QRegularExpression re(
        QStringLiteral("^sha-([0-9a-f]{40})(?:-dirty-([0-9a-f]{12}))?$"));
    return re;
}

} // namespace

QString buildTag(const QString &commit, const QString &changes)
{
    QString tag = QStringLiteral("sha-") + commit;
    if (!changes.isEmpty())
        tag += QStringLiteral("-dirty-") + changes.left(12);
    return tag;
}

bool isBuildTag(const QString &tag, QString *commit, bool *dirty)
{
    const auto m = buildTagPattern().match(tag);
    if (!m.hasMatch())
        return false;
    if (commit)
        *commit = m.captured(1);
    if (dirty)
        *dirty = m.hasCaptured(2);
    return true;
}

int checkoutSchema(const QStringList &migrationFileNames)
{
    static const QRegularExpression numbered(QStringLiteral("^([0-9]+)_[^/]*\\.sql$"));
    int highest = -1;
    for (const QString &name : migrationFileNames) {
        const auto m = numbered.match(name);
        if (m.hasMatch())
            highest = std::max(highest, m.captured(1).toInt());
    }
    return highest;
}

QString BuildLog::add(const QString &line)
{
    static const QRegularExpression classic(QStringLiteral("^Step \\d+/\\d+ : "));
    static const QRegularExpression buildkit(QStringLiteral("^#\\d+ \\[[^\\]]*\\d+/\\d+\\] "));
    const QString text = line.trimmed();
    if (text.isEmpty())
        return {};
    m_tail << text;
    if (m_tail.size() > kTailLines)
        m_tail.removeFirst();
    if (classic.match(text).hasMatch() || buildkit.match(text).hasMatch()) {
        m_step = text;
        return text;
    }
    return {};
}

QString BuildLog::failure(const QString &image, const QString &cause) const
{
    QString where = m_step.isEmpty() ? QString() : QStringLiteral(" at \"%1\"").arg(m_step);
    QString text = QStringLiteral("Building %1 failed%2: %3. Fix the error shown in the last "
                                  "lines below and build again; what runs now is unchanged.")
                       .arg(image, where, cause);
    if (!m_tail.isEmpty())
        text += QStringLiteral("\n  ") + m_tail.join(QStringLiteral("\n  "));
    return text;
}

LocalBuild::LocalBuild(Environment env, QMap<QString, QString> variables, QObject *parent)
    : QObject(parent)
    , m_env(std::move(env))
    , m_variables(std::move(variables))
{ }

LocalBuild::~LocalBuild()
{
    if (m_command)
        m_command->dismiss();
}

void LocalBuild::cancel()
{
    m_cancelled = true;
    if (m_command)
        m_command->cancel();
}

void LocalBuild::fail(const QString &message, bool notACheckout)
{
    if (!m_done)
        return;
    Failure f { message, notACheckout, m_cancelled };
    if (m_cancelled)
        f.message = QStringLiteral("the build was cancelled; nothing was tagged");
    auto done = std::exchange(m_done, {});
    done({}, f);
}

void LocalBuild::succeed()
{
    if (!m_done)
        return;
    auto done = std::exchange(m_done, {});
    done(m_build, {});
}

void LocalBuild::git(const QStringList &args, std::function<void(const CommandResult &)> then,
                     const QString &indexFile)
{
    CommandSpec spec;
    spec.program = QStringLiteral("git");
    spec.arguments = QStringList { QStringLiteral("-C"), m_env.stackDirectory() } + args;
    spec.environment.insert(QStringLiteral("LANG"), QStringLiteral("C"));
    spec.environment.insert(QStringLiteral("GIT_TERMINAL_PROMPT"), QStringLiteral("0"));
    spec.environment.insert(QStringLiteral("GIT_OPTIONAL_LOCKS"), QStringLiteral("0"));
    if (!indexFile.isEmpty())
        spec.environment.insert(QStringLiteral("GIT_INDEX_FILE"), indexFile);
    spec.timeoutMs = kGitTimeoutMs;
    spec.description = QStringLiteral("git ") + args.value(0);
    auto *cmd = new Command(spec, this);
    m_command = cmd;
    connect(cmd, &Command::finished, this, [this, cmd, then](const CommandResult &r) {
        cmd->deleteLater();
        m_command = nullptr;
        if (m_cancelled) {
            fail({});
            return;
        }
        then(r);
    });
    cmd->start();
}

void LocalBuild::start(bool reuse, Done done)
{
    m_done = std::move(done);
    m_reuse = reuse;
    m_cancelled = false;
    if (m_env.imageRepository.isEmpty() || m_env.imageServices.isEmpty()) {
        QMetaObject::invokeMethod(
            this,
            [this] {
                fail(QStringLiteral("\"%1\" names no image to build: set image.repository and "
                                    "image.services in its environment")
                         .arg(m_env.name));
            },
            Qt::QueuedConnection);
        return;
    }
    const QString folder = m_env.stackDirectory();
    emit progress(QStringLiteral("Reading the checkout in %1").arg(folder));
    git({ QStringLiteral("log"), QStringLiteral("-1"), QStringLiteral("--format=%H %cI"),
          QStringLiteral("HEAD") },
        [this, folder](const CommandResult &r) {
            if (r.end == CommandResult::End::FailedToStart) {
                fail(QStringLiteral("git is not installed, and a build is tagged by its commit: "
                                    "install git (apt-get install git) and build again"),
                     true);
                return;
            }
            const QStringList parts = r.output.trimmed().split(QLatin1Char(' '));
            if (!r.ok() || parts.size() != 2 || parts.first().size() != 40) {
                const bool noCommit = r.errorOutput.contains(QLatin1String("does not have any")) ||
                    r.errorOutput.contains(QLatin1String("unknown revision"));
                fail(noCommit ? QStringLiteral("%1 has no commit yet; commit once, then build "
                                               "(a build is tagged sha-<commit>)")
                                    .arg(folder)
                              : QStringLiteral("%1 is not a git checkout, so a build has no "
                                               "commit to be tagged by: build from a clone of the "
                                               "repository")
                                    .arg(folder),
                     true);
                return;
            }
            m_build.commit = parts.first();
            m_commitTime = parts.last();
            git({ QStringLiteral("status"), QStringLiteral("--porcelain"),
                  QStringLiteral("--untracked-files=all") },
                [this](const CommandResult &status) {
                    if (!status.ok()) {
                        fail(QStringLiteral("git status failed: %1")
                                 .arg(status.errorOutput.trimmed()));
                        return;
                    }
                    if (status.output.trimmed().isEmpty()) {
                        described();
                        return;
                    }
                    // The working tree as a git tree, written through an index of
                    // our own (the user's index and stash stay as they are).
                    m_scratch = std::make_unique<QTemporaryDir>();
                    const QString index = m_scratch->filePath(QStringLiteral("index"));
                    if (!m_scratch->isValid()) {
                        fail(QStringLiteral("cannot make a temporary folder to read the changes"));
                        return;
                    }
                    git(
                        { QStringLiteral("read-tree"), QStringLiteral("HEAD") },
                        [this, index](const CommandResult &read) {
                            if (!read.ok()) {
                                fail(QStringLiteral("git read-tree failed: %1")
                                         .arg(read.errorOutput.trimmed()));
                                return;
                            }
                            git(
                                { QStringLiteral("add"), QStringLiteral("--all") },
                                [this, index](const CommandResult &added) {
                                    if (!added.ok()) {
                                        fail(QStringLiteral("git add failed: %1")
                                                 .arg(added.errorOutput.trimmed()));
                                        return;
                                    }
                                    git(
                                        { QStringLiteral("write-tree") },
                                        [this](const CommandResult &tree) {
                                            m_scratch.reset();
                                            const QString id = tree.output.trimmed();
                                            if (!tree.ok() || id.size() < 12) {
                                                fail(QStringLiteral("git write-tree failed: %1")
                                                         .arg(tree.errorOutput.trimmed()));
                                                return;
                                            }
                                            m_changes = id;
                                            described();
                                        },
                                        index);
                                },
                                index);
                        },
                        index);
                });
        });
}

void LocalBuild::described()
{
    m_build.tag = buildTag(m_build.commit, m_changes);
    m_build.dirty = !m_changes.isEmpty();
    m_build.environment = m_env.name;
    m_build.repository = m_env.imageRepository;
    m_build.who = DeploymentHistory::currentUser();
    const QDir migrations(QDir(m_env.stackDirectory())
                              .filePath(QStringLiteral("services/deckhand/migrations/postgres")));
    m_build.schema = checkoutSchema(migrations.entryList({ QStringLiteral("*.sql") }, QDir::Files));
    emit progress(m_build.dirty ? QStringLiteral("This checkout is commit %1 with uncommitted "
                                                 "changes: its build is %2")
                                      .arg(m_build.commit.left(12), m_build.tag)
                                : QStringLiteral("This checkout is commit %1: its build is %2")
                                      .arg(m_build.commit.left(12), m_build.tag));
    if (!m_reuse) {
        compose();
        return;
    }
    inspect([this](bool found) {
        if (found) {
            emit progress(QStringLiteral("%1:%2 is already on the engine")
                              .arg(m_env.imageRepository, m_build.tag));
            succeed();
            return;
        }
        compose();
    });
}

void LocalBuild::inspect(std::function<void(bool)> then)
{
    const QString ref = m_env.imageRepository + QLatin1Char(':') + m_build.tag;
    auto *cmd = new Command(
        dockerCommand(m_env,
                      { QStringLiteral("image"), QStringLiteral("inspect"),
                        QStringLiteral("--format"), QStringLiteral("{{.Id}} {{.Created}}"), ref },
                      60000, QStringLiteral("docker image inspect")),
        this);
    m_command = cmd;
    connect(cmd, &Command::finished, this, [this, cmd, then](const CommandResult &r) {
        cmd->deleteLater();
        m_command = nullptr;
        if (m_cancelled) {
            fail({});
            return;
        }
        const QStringList parts = r.output.trimmed().split(QLatin1Char(' '));
        if (!r.ok() || !parts.first().startsWith(QLatin1String("sha256:"))) {
            then(false);
            return;
        }
        m_build.imageId = parts.first();
        if (m_reuse && parts.size() > 1)
            m_build.builtAt = QDateTime::fromString(parts.at(1), Qt::ISODateWithMs);
        if (!m_build.builtAt.isValid())
            m_build.builtAt = QDateTime::currentDateTimeUtc();
        then(true);
    });
    cmd->start();
}

void LocalBuild::compose()
{
    QMap<QString, QString> variables = m_variables;
    variables.insert(m_env.repositoryVariable, m_env.imageRepository);
    variables.insert(m_env.tagVariable, m_build.tag);
    QString created;
    if (const QString why = prepareComposeEnv(m_env, variables, true, &created); !why.isEmpty()) {
        fail(why);
        return;
    }
    if (!created.isEmpty())
        emit progress(created);
    locateCompose(m_env, this, [this, variables](Expected<ComposeCli> cli) {
        if (m_cancelled) {
            fail({});
            return;
        }
        if (!cli) {
            fail(cli.error());
            return;
        }
        const QString image = m_env.imageRepository + QLatin1Char(':') + m_build.tag;
        // The service's build section (compose.build.yaml for local-compose)
        // says the context and Dockerfile; the arguments say what it is.
        const QStringList args { QStringLiteral("build"),
                                 QStringLiteral("--build-arg"),
                                 QStringLiteral("GIT_SHA=") + m_build.commit,
                                 QStringLiteral("--build-arg"),
                                 QStringLiteral("IMAGE_TAG=") + m_build.tag,
                                 QStringLiteral("--build-arg"),
                                 QStringLiteral("BUILD_TIME=") + m_commitTime,
                                 m_env.backendService() };
        CommandSpec spec = composeCommand(m_env, *cli, args, kBuildTimeoutMs,
                                          QStringLiteral("compose build"), variables);
        emit progress(QStringLiteral("Building %1 from %2").arg(image, m_env.stackDirectory()));
        m_log = {};
        auto *cmd = new Command(spec, this);
        m_command = cmd;
        connect(cmd, &Command::outputLine, this, [this](const QString &line, bool) {
            m_log.add(line);
            if (!line.trimmed().isEmpty())
                emit progress(line.trimmed());
        });
        connect(cmd, &Command::finished, this, [this, cmd, image](const CommandResult &r) {
            cmd->deleteLater();
            m_command = nullptr;
            if (m_cancelled || r.end == CommandResult::End::Cancelled) {
                m_cancelled = true;
                fail({});
                return;
            }
            if (!r.ok()) {
                const QString cause = r.end == CommandResult::End::TimedOut
                    ? QStringLiteral("it took over %1 minutes").arg(kBuildTimeoutMs / 60000)
                    : explainDockerFailure(r, QStringLiteral("compose build"), m_env);
                fail(m_log.failure(image, cause));
                return;
            }
            m_build.builtAt = {};
            inspect([this, image](bool found) {
                if (!found) {
                    fail(QStringLiteral("compose built no image %1: the compose files of \"%2\" "
                                        "give %3 no build section (local-compose adds "
                                        "compose.build.yaml for it)")
                             .arg(image, m_env.name, m_env.backendService()));
                    return;
                }
                emit progress(
                    QStringLiteral("Built %1 (%2)").arg(image, m_build.imageId.mid(7, 12)));
                succeed();
            });
        });
        cmd->start();
    });
}

} // namespace pilothouse
