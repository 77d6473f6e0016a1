#include "env/dotenv.h"

#include <QDir>
#include <QFile>
#include <QRandomGenerator>
#include <QRegularExpression>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace pilothouse {

namespace {

bool isSecretName(const QString &name)
{
    static const QRegularExpression re(QStringLiteral("(_PASSWORD|_SECRET|_TOKEN)$"));
    return re.match(name).hasMatch();
}

// NAME=value lines of a .env file (comments and blanks skipped).
QHash<QString, QString> readAssignments(const QString &path)
{
    QHash<QString, QString> values;
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly))
        return values;
    for (const QByteArray &raw : f.readAll().split('\n')) {
        const QByteArray line = raw.trimmed();
        if (line.isEmpty() || line.startsWith('#'))
            continue;
        const qsizetype eq = line.indexOf('=');
        if (eq > 0)
            values.insert(QString::fromUtf8(line.left(eq).trimmed()),
                          QString::fromUtf8(line.mid(eq + 1).trimmed()));
    }
    return values;
}

} // namespace

QHash<QString, QString> readDotEnv(const QString &path)
{
    return readAssignments(path);
}

bool isSecretVariable(const QString &name)
{
    return isSecretName(name);
}

QStringList secretValues(const QString &envFile)
{
    QStringList values;
    const QHash<QString, QString> assignments = readAssignments(envFile);
    for (auto it = assignments.cbegin(); it != assignments.cend(); ++it) {
        if (isSecretName(it.key()) && !it.value().isEmpty())
            values << it.value();
    }
    return values;
}

QByteArray randomSecret()
{
    QByteArray bytes(32, Qt::Uninitialized);
    QRandomGenerator::system()->fillRange(reinterpret_cast<quint32 *>(bytes.data()),
                                          bytes.size() / int(sizeof(quint32)));
    return bytes.toHex();
}

QByteArray fillSecrets(const QByteArray &example, QStringList *generated,
                       const std::function<QByteArray(const QString &)> &random)
{
    static const QRegularExpression assignment(
        QStringLiteral("^(\\s*)([A-Za-z_][A-Za-z0-9_]*)=(.*)$"));
    QByteArrayList out;
    for (const QByteArray &line : example.split('\n')) {
        const auto m = assignment.match(QString::fromUtf8(line));
        if (!m.hasMatch() || line.trimmed().startsWith('#')) {
            out << line;
            continue;
        }
        const QString name = m.captured(2);
        const QString value = m.captured(3).trimmed();
        if (!isSecretName(name) && !value.startsWith(QLatin1String("change-me"))) {
            out << line;
            continue;
        }
        if (generated)
            *generated << name;
        out << m.captured(1).toUtf8() + name.toUtf8() + '=' + random(name);
    }
    return out.join('\n');
}

Expected<DotEnvCreated> ensureDotEnv(const QString &folder)
{
    const QString example = QDir(folder).filePath(QStringLiteral(".env.example"));
    const QString target = QDir(folder).filePath(QStringLiteral(".env"));
    if (QFile::exists(target) || !QFile::exists(example))
        return DotEnvCreated {};
    QFile in(example);
    if (!in.open(QIODevice::ReadOnly))
        return Error { QStringLiteral("cannot read %1 (%2)").arg(example, in.errorString()) };
    DotEnvCreated created;
    QByteArray text = fillSecrets(in.readAll(), &created.generated,
                                  [](const QString &) { return randomSecret(); });
    text.prepend(QByteArrayLiteral("# Made by Pilothouse from .env.example with new random "
                                   "passwords. Private to you (mode 0600),\n# never committed "
                                   "(.gitignore). Change a value here, then restart the stack.\n"));
    // O_EXCL: a .env that appeared meanwhile is never replaced.
    const QByteArray path = QFile::encodeName(target);
    const int fd =
        ::open(path.constData(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return DotEnvCreated {};
        return Error { QStringLiteral("cannot create %1 (%2); create it from %3 by hand and set "
                                      "its passwords")
                           .arg(target, QString::fromLocal8Bit(std::strerror(errno)), example) };
    }
    qsizetype written = 0;
    while (written < text.size()) {
        const ssize_t n = ::write(fd, text.constData() + written, size_t(text.size() - written));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            const QString why = QString::fromLocal8Bit(std::strerror(errno));
            ::close(fd);
            ::unlink(path.constData()); // no half file with a missing password
            return Error { QStringLiteral("cannot write %1 (%2)").arg(target, why) };
        }
        written += n;
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
        ::unlink(path.constData());
        return Error { QStringLiteral("cannot write %1 (%2)")
                           .arg(target, QString::fromLocal8Bit(std::strerror(errno))) };
    }
    created.path = target;
    return created;
}

QString stackVariable(const QString &name, const QStringList &composeFiles, const QString &envFile)
{
    if (const QString value = qEnvironmentVariable(qPrintable(name)); !value.isEmpty())
        return value;
    if (const QString value = readAssignments(envFile).value(name); !value.isEmpty())
        return value;
    const QRegularExpression fallback(
        QStringLiteral("\\$\\{%1:?-([^}]*)\\}").arg(QRegularExpression::escape(name)));
    for (const QString &file : composeFiles) {
        QFile f(file);
        if (!f.open(QIODevice::ReadOnly))
            continue;
        const auto m = fallback.match(QString::fromUtf8(f.readAll()));
        if (m.hasMatch())
            return m.captured(1);
    }
    return {};
}

QStringList missingRequiredVariables(const QString &composeFile, const QString &envFile)
{
    QFile f(composeFile);
    if (!f.open(QIODevice::ReadOnly))
        return {};
    static const QRegularExpression required(QStringLiteral("\\$\\{([A-Za-z_][A-Za-z0-9_]*):?\\?"));
    const QHash<QString, QString> dotenv = readAssignments(envFile);
    QStringList missing;
    auto it = required.globalMatch(QString::fromUtf8(f.readAll()));
    while (it.hasNext()) {
        const QString name = it.next().captured(1);
        if (missing.contains(name) || !qEnvironmentVariableIsEmpty(qPrintable(name)) ||
            !dotenv.value(name).isEmpty())
            continue;
        missing << name;
    }
    return missing;
}

} // namespace pilothouse
