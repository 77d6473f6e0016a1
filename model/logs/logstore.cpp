#include "logs/logstore.h"

#include "drivers/docker.h"

#include <QRegularExpression>

namespace pilothouse {

LogStore::LogStore(qsizetype linesPerService, QObject *parent)
    : QObject(parent)
    , m_capacity(linesPerService)
{
    qRegisterMetaType<pilothouse::LogLine>();
}

QString LogStore::levelOf(const QString &line)
{
    if (!line.startsWith(QLatin1Char('{')))
        return {};
    static const QRegularExpression re(
        QStringLiteral("\"(?:level|severity)\"\\s*:\\s*\"([A-Za-z]+)\""));
    const auto m = re.match(line);
    return m.hasMatch() ? m.captured(1).toLower() : QString();
}

void LogStore::append(const QString &service, const QString &line)
{
    auto it = m_buffers.find(service);
    if (it == m_buffers.end())
        it = m_buffers.insert(service, RingBuffer<LogLine>(m_capacity));
    LogLine l { QDateTime::currentDateTimeUtc(), line, levelOf(line) };
    it->push(l);
    emit appended(service, l);
}

QList<LogLine> LogStore::lines(const QString &service) const
{
    const auto it = m_buffers.constFind(service);
    return it == m_buffers.cend() ? QList<LogLine> {} : it->toList();
}

QStringList LogStore::services() const
{
    QStringList out = m_buffers.keys();
    out.sort();
    return out;
}

void LogStore::clear()
{
    m_buffers.clear();
}

ComposeLogFollower::ComposeLogFollower(const Environment &env, LogStore *store, QObject *parent)
    : QObject(parent)
    , m_env(env)
    , m_store(store)
{ }

ComposeLogFollower::~ComposeLogFollower()
{
    stop();
}

std::pair<QString, QString> ComposeLogFollower::splitPrefixed(const QString &line)
{
    static const QRegularExpression re(QStringLiteral("^(\\S+?)(?:[-_]\\d+)?\\s+\\| ?(.*)$"));
    const auto m = re.match(line);
    if (!m.hasMatch())
        return { QString(), line };
    return { m.captured(1), m.captured(2) };
}

void ComposeLogFollower::follow(const QString &service, int tail)
{
    stop();
    if (!service.isEmpty() && !isValidServiceName(service)) {
        emit ended(QStringLiteral("\"%1\" is not a valid service name").arg(service));
        return;
    }
    m_service = service;
    const quint64 generation = ++m_generation;
    if (m_env.kind == EnvironmentKind::Swarm) {
        followSwarm(service, tail);
        return;
    }
    locateCompose(m_env, this, [this, service, tail, generation](Expected<ComposeCli> cli) {
        if (generation != m_generation)
            return; // stopped or replaced while the compose CLI was being found
        if (!cli) {
            emit ended(cli.error());
            return;
        }
        QStringList args { QStringLiteral("logs"), QStringLiteral("--follow"),
                           QStringLiteral("--no-color"), QStringLiteral("--tail"),
                           QString::number(tail) };
        if (!service.isEmpty())
            args << service;
        CommandSpec spec = composeCommand(m_env, *cli, args, 0, QStringLiteral("compose logs"));
        spec.keepOutput = false; // a follower: lines go to the store
        auto *cmd = new Command(spec, this);
        m_command = cmd;
        connect(cmd, &Command::outputLine, this, [this](const QString &line, bool) {
            // Container lines carry a "service | " prefix on either stream;
            // anything else is compose's own chatter ("Attaching to ...").
            auto [svc, text] = splitPrefixed(line);
            if (svc.isEmpty())
                return;
            if (!m_service.isEmpty())
                svc = m_service;
            m_store->append(svc, text);
        });
        connect(cmd, &Command::finished, this, [this, cmd](const CommandResult &r) {
            cmd->deleteLater();
            if (m_command == cmd)
                m_command = nullptr;
            emit ended(r.end == CommandResult::End::Cancelled || r.ok()
                           ? QString()
                           : explainDockerFailure(r, QStringLiteral("compose logs"), m_env));
        });
        cmd->start();
    });
}

void ComposeLogFollower::stop()
{
    ++m_generation;
    if (m_command) {
        m_command->dismiss();
        m_command = nullptr;
    }
    for (const QPointer<Command> &c : std::as_const(m_swarmCommands)) {
        if (c)
            c->dismiss();
    }
    m_swarmCommands.clear();
}

void ComposeLogFollower::followSwarm(const QString &service, int tail)
{
    // `docker service logs` takes one service: one follower per service.
    QStringList services;
    if (!service.isEmpty())
        services << service;
    else
        for (const WatchedService &s : m_env.services)
            services << s.name;
    for (const QString &svc : std::as_const(services)) {
        CommandSpec spec = dockerCommand(
            m_env,
            { QStringLiteral("service"), QStringLiteral("logs"), QStringLiteral("--follow"),
              QStringLiteral("--no-task-ids"), QStringLiteral("--tail"), QString::number(tail),
              m_env.stackName() + QLatin1Char('_') + svc },
            0, QStringLiteral("docker service logs"));
        spec.keepOutput = false;
        auto *cmd = new Command(spec, this);
        m_swarmCommands << cmd;
        connect(cmd, &Command::outputLine, this, [this, svc](const QString &line, bool) {
            // "deckhand_api.1@node    | text": the task's prefix goes.
            const qsizetype bar = line.indexOf(QLatin1String("| "));
            const QString text =
                bar >= 0 && !line.left(bar).contains(QLatin1Char('{')) ? line.mid(bar + 2) : line;
            m_store->append(svc, text);
        });
        connect(cmd, &Command::finished, this, [this, cmd](const CommandResult &r) {
            cmd->deleteLater();
            m_swarmCommands.removeAll(cmd);
            if (r.end == CommandResult::End::Cancelled || r.ok()) {
                if (m_swarmCommands.isEmpty())
                    emit ended({});
                return;
            }
            emit ended(explainDockerFailure(r, QStringLiteral("docker service logs"), m_env));
        });
        cmd->start();
    }
}

} // namespace pilothouse
