#include "core/secrets.h"

#ifdef PILOTHOUSE_HAVE_KEYCHAIN
#include <qt6keychain/keychain.h>
#endif

namespace pilothouse {

QString keychainService()
{
    return QStringLiteral("pilothouse");
}

#ifdef PILOTHOUSE_HAVE_KEYCHAIN

bool keychainAvailable()
{
    return true;
}

static QString explain(QKeychain::Job *job, const QString &key)
{
    switch (job->error()) {
    case QKeychain::EntryNotFound:
        return QStringLiteral("no secret \"%1\" in the keychain; store it first (pilothousectl "
                              "set-db-password)")
            .arg(key);
    case QKeychain::NoBackendAvailable:
        return QStringLiteral("no keychain is available (no Secret Service on the session bus: "
                              "start gnome-keyring or KWallet, or use ~/.pgpass or passwordEnv)");
    case QKeychain::AccessDenied:
    case QKeychain::AccessDeniedByUser:
        return QStringLiteral("the keychain refused access to \"%1\" (is it locked?)").arg(key);
    default:
        return QStringLiteral("keychain error for \"%1\": %2").arg(key, job->errorString());
    }
}

void readSecret(const QString &key, QObject *context, std::function<void(Expected<QString>)> done)
{
    auto *job = new QKeychain::ReadPasswordJob(keychainService(), context);
    job->setKey(key);
    job->setInsecureFallback(false); // never a plain-text file
    QObject::connect(job, &QKeychain::Job::finished, context, [job, key, done](QKeychain::Job *) {
        if (job->error() != QKeychain::NoError)
            done(Error { explain(job, key) });
        else
            done(job->textData());
    });
    job->start();
}

void writeSecret(const QString &key, const QString &value, QObject *context,
                 std::function<void(Outcome)> done)
{
    auto *job = new QKeychain::WritePasswordJob(keychainService(), context);
    job->setKey(key);
    job->setInsecureFallback(false);
    job->setTextData(value);
    QObject::connect(job, &QKeychain::Job::finished, context, [job, key, done](QKeychain::Job *) {
        if (job->error() != QKeychain::NoError)
            done(Error { explain(job, key) });
        else
            done(success());
    });
    job->start();
}

void deleteSecret(const QString &key, QObject *context, std::function<void(Outcome)> done)
{
    auto *job = new QKeychain::DeletePasswordJob(keychainService(), context);
    job->setKey(key);
    job->setInsecureFallback(false);
    QObject::connect(job, &QKeychain::Job::finished, context, [job, key, done](QKeychain::Job *) {
        if (job->error() != QKeychain::NoError && job->error() != QKeychain::EntryNotFound)
            done(Error { explain(job, key) });
        else
            done(success());
    });
    job->start();
}

#else

bool keychainAvailable()
{
    return false;
}

static Error noKeychain()
{
    return Error { QStringLiteral(
        "this build has no keychain support (install "
        "qtkeychain-qt6-dev and rebuild); use ~/.pgpass or passwordEnv") };
}

void readSecret(const QString &, QObject *context, std::function<void(Expected<QString>)> done)
{
    QMetaObject::invokeMethod(
        context, [done] { done(noKeychain()); }, Qt::QueuedConnection);
}

void writeSecret(const QString &, const QString &, QObject *context,
                 std::function<void(Outcome)> done)
{
    QMetaObject::invokeMethod(
        context, [done] { done(noKeychain()); }, Qt::QueuedConnection);
}

void deleteSecret(const QString &, QObject *context, std::function<void(Outcome)> done)
{
    QMetaObject::invokeMethod(
        context, [done] { done(noKeychain()); }, Qt::QueuedConnection);
}

#endif

} // namespace pilothouse
