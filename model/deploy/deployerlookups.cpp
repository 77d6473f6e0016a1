// The Deployer's questions to the outside world, none of which changes
// anything: the registry (tags, credentials), the backend's /version, the
// database's schema, the history (the pin, rollback plans). deployer.cpp
// holds the steps that do change things.
#include "core/session.h"
#include "deploy/deployer.h"
#include "deploy/historystore.h"
#include "drivers/docker.h"
#include "registry/registryclient.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QNetworkReply>
#include <utility>

namespace pilothouse {

QString Deployer::service() const
{
    return m_session ? m_session->environment().backendService() : QString();
}

QStringList Deployer::services() const
{
    return m_session ? m_session->environment().imageServices : QStringList();
}

QString Deployer::rolloutCaveat() const
{
    return m_strategy ? m_strategy->caveat() : QString();
}

QString Deployer::runningTag() const
{
    if (!m_session)
        return {};
    const auto s = m_session->stateOf(service());
    return s && s->isRunning() ? s->tag : QString();
}

QList<std::optional<ServiceState>> Deployer::states(const QStringList &names) const
{
    QList<std::optional<ServiceState>> out;
    for (const QString &n : names)
        out << (m_session ? m_session->stateOf(n) : std::nullopt);
    return out;
}

void Deployer::restorePin(std::function<void(const QString &)> then)
{
    if (!m_session || !m_history || m_session->environment().imageRepository.isEmpty()) {
        if (then)
            QMetaObject::invokeMethod(
                this, [then] { then({}); }, Qt::QueuedConnection);
        return;
    }
    if (then)
        m_pinWaiters << then;
    if (m_pinReading)
        return;
    m_pinReading = true;
    const QString env = m_session->environment().name;
    // Read again every time: another front end (pilothousectl, another
    // window) may have deployed since; the history is what all of them share.
    m_history->list(env, 50, this, [this](Expected<QList<Deployment>> rows) {
        m_pinReading = false;
        QString note;
        if (!rows) {
            note = m_session->pinnedTag().isEmpty()
                ? QStringLiteral("The deployment history could not be read (%1); starting the "
                                 "compose file's tag")
                      .arg(rows.error())
                : QStringLiteral("The deployment history could not be read (%1); starting %2, "
                                 "the tag deployed last from here")
                      .arg(rows.error(), m_session->pinnedTag());
        } else if (m_session) {
            for (const Deployment &d : rowsFor(*rows, services())) {
                const QString pin = pinAfter(d.outcome, true, d);
                if (!pin.isEmpty()) {
                    m_session->setPinnedTag(pin);
                    break;
                }
            }
        }
        const auto waiters = std::exchange(m_pinWaiters, {});
        for (const auto &w : waiters)
            w(note);
    });
}

void Deployer::withRegistry(std::function<void(Expected<RegistryClient *>)> then)
{
    if (!m_session) {
        then(Error { QStringLiteral("no environment") });
        return;
    }
    // One client for the deployer's life (its token serves every call);
    // credentials are read again after resetRegistry().
    if (m_registry && !m_registryCredentialsStale) {
        then(m_registry.get());
        return;
    }
    if (!m_registry) {
        m_registryCredentialsStale = false; // read as the client is made
        makeRegistryClient(m_session->environment(), this,
                           [this, then](Expected<std::shared_ptr<RegistryClient>> client) {
                               if (!client) {
                                   then(Error { client.error() });
                                   return;
                               }
                               if (!m_registry) // two first calls: the first made is kept
                                   m_registry = *client;
                               then(m_registry.get());
                           });
        return;
    }
    m_registryCredentialsStale = false;
    applyRegistryCredentials(m_session->environment(), m_registry, this,
                             [this, then](Outcome applied) {
                                 if (!applied) {
                                     m_registryCredentialsStale = true;
                                     then(Error { applied.error() });
                                     return;
                                 }
                                 then(m_registry.get());
                             });
}

void Deployer::listTags(QObject *context, std::function<void(Expected<QList<ImageTag>>)> done,
                        bool signatures)
{
    QPointer<QObject> ctx(context);
    if (!m_session) {
        done(Error { QStringLiteral("no environment") });
        return;
    }
    const Environment &env = m_session->environment();
    // The engine's images of the repository: the tags themselves when they
    // come from the engine, else their creation times.
    const auto engineImages = [this, repo = env.imageRepository](
                                  std::function<void(const CommandResult &)> then) {
        auto *cmd =
            new Command(docker({ QStringLiteral("image"), QStringLiteral("ls"),
                                 QStringLiteral("--format"), QStringLiteral("{{json .}}"), repo },
                               15000, QStringLiteral("docker image ls")),
                        this);
        connect(cmd, &Command::finished, this, [cmd, then](const CommandResult &r) {
            cmd->deleteLater();
            then(r);
        });
        startWhenReachable(cmd);
    };
    // Times: what the history knows first (a local build's own record, then
    // when a tag first showed up in a deployment), else the engine's image.
    const auto ordered = [this, ctx, done](QStringList names, QByteArray local) {
        if (!m_history) {
            done(orderTags(names, imageTimes(local)));
            return;
        }
        m_history->builds(
            m_session->environment().imageRepository, 1000, this,
            [this, ctx, done, names, local](Expected<QList<Build>> builds) {
                m_history->list(
                    m_session->environment().name, 1000, this,
                    [ctx, done, names, local, builds](Expected<QList<Deployment>> rows) {
                        if (!ctx)
                            return;
                        QHash<QString, QDateTime> times;
                        if (builds) {
                            for (const Build &b : *builds) {
                                if (!times.contains(b.tag) && b.builtAt.isValid())
                                    times.insert(b.tag, b.builtAt);
                            }
                        }
                        const auto more = [&times](const QHash<QString, QDateTime> &from) {
                            for (auto it = from.cbegin(); it != from.cend(); ++it) {
                                if (!times.contains(it.key()))
                                    times.insert(it.key(), it.value());
                            }
                        };
                        if (rows)
                            more(tagTimes(*rows));
                        more(imageTimes(local));
                        done(orderTags(names, times));
                    });
            });
    };
    if (env.tagsFromEngine()) {
        engineImages([this, ctx, done, ordered](const CommandResult &r) {
            if (!ctx)
                return;
            if (!r.ok()) {
                done(Error { explainDockerFailure(r, QStringLiteral("listing the engine's images"),
                                                  m_session->environment()) });
                return;
            }
            const QByteArray lines = r.output.toUtf8();
            ordered(imageTags(lines), lines);
        });
        return;
    }
    withRegistry([this, ctx, done, signatures, engineImages,
                  ordered](Expected<RegistryClient *> client) {
        if (!client) {
            if (ctx)
                done(Error { client.error() });
            return;
        }
        (*client)->listTags([ctx, done, signatures, engineImages,
                             ordered](Expected<QStringList> tags) {
            if (!ctx)
                return;
            if (!tags) {
                done(Error { tags.error() });
                return;
            }
            const QStringList names = signatures ? *tags : RegistryClient::deployableTags(*tags);
            engineImages([names, ordered](const CommandResult &r) {
                ordered(names, r.ok() ? r.output.toUtf8() : QByteArray());
            });
        });
    });
}

void Deployer::fetchSchema(std::function<void(int)> done)
{
    // deckhand's /version says which schema this build expects; it sits next
    // to the backend's health endpoint.
    QUrl url;
    if (m_session) {
        for (const WatchedService &s : m_session->environment().services) {
            if (s.name == service() && !s.endpoints.isEmpty()) {
                url = s.endpoints.first().url;
                break;
            }
        }
    }
    if (!url.isValid()) {
        QMetaObject::invokeMethod(
            this, [done] { done(-1); }, Qt::QueuedConnection);
        return;
    }
    url.setPath(QStringLiteral("/version"));
    url.setQuery(QString());
    QNetworkRequest request(url);
    request.setTransferTimeout(3000);
    QNetworkReply *reply = m_network.get(request);
    connect(reply, &QNetworkReply::finished, this, [reply, done] {
        reply->deleteLater();
        const QJsonObject o = QJsonDocument::fromJson(reply->readAll()).object();
        done(reply->error() == QNetworkReply::NoError && o.contains(u"schema_version")
                 ? o.value(u"schema_version").toInt(-1)
                 : -1);
    });
}

int Deployer::databaseSchema() const
{
    if (!m_session)
        return -1;
    // The running backend reports the database's version in its readiness.
    HealthMonitor *monitor = m_session->monitor();
    for (int id : monitor->ids()) {
        const EndpointState *e = monitor->endpoint(id);
        if (e->service != service())
            continue;
        for (const health::Check &c : e->checks) {
            if (c.name == QLatin1String("schema:version") && c.observedValue)
                return int(*c.observedValue);
        }
    }
    if (DatabaseProbe *probe = m_session->databaseProbe()) {
        if (probe->facts().reachable() && probe->facts().migrationVersion >= 0)
            return int(probe->facts().migrationVersion);
    }
    return -1;
}

void Deployer::planRollback(const QString &toTag, QObject *context,
                            std::function<void(Expected<RollbackPlan>)> done)
{
    QPointer<QObject> ctx(context);
    const auto answer = [this, ctx, done](Expected<RollbackPlan> plan) {
        QMetaObject::invokeMethod(
            this,
            [ctx, done, plan] {
                if (ctx)
                    done(plan);
            },
            Qt::QueuedConnection);
    };
    if (!m_session || !m_history) {
        answer(Error { QStringLiteral("no environment or history") });
        return;
    }
    const Environment &env = m_session->environment();
    const auto running = m_session->stateOf(service());
    if (!running || running->containerId.isEmpty()) {
        answer(Error {
            QStringLiteral("%1 has no container in \"%2\"; start the stack first")
                .arg(service().isEmpty() ? QStringLiteral("the backend") : service(), env.name) });
        return;
    }
    if (!toTag.isEmpty() && !isValidImageTag(toTag)) {
        answer(Error { QStringLiteral("\"%1\" is not a valid image tag").arg(toTag) });
        return;
    }
    ServiceState current = *running;
    if (env.tagsFromEngine())
        current.digest = current.imageId; // a local build is known by its image id
    m_history->builds(
        env.imageRepository, 1000, this,
        [this, env, current, toTag, answer](Expected<QList<Build>> builds) {
            QHash<QString, int> schemas;
            if (builds) {
                for (const Build &b : *builds) {
                    if (!schemas.contains(b.tag) && b.schema >= 0)
                        schemas.insert(b.tag, b.schema);
                }
            }
            m_history->list(
                env.name, 500, this,
                [this, current, toTag, answer, schemas](Expected<QList<Deployment>> rows) {
                    if (!rows) {
                        answer(Error { rows.error() });
                        return;
                    }
                    answer(pilothouse::planRollback(*rows, services(), current, toTag,
                                                    databaseSchema(), schemas));
                });
        });
}

} // namespace pilothouse
