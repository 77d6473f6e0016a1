#pragma once

// What the in-process benchmarks share: a deckhand to talk to, the process's
// own CPU time, and how late the event loop runs a 5 ms timer at worst.
#include <QCommandLineParser>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QHostAddress>
#include <QProcess>
#include <QTcpServer>
#include <QTcpSocket>
#include <QThread>
#include <QTimer>
#include <algorithm>
#include <cstdio>
#include <sys/resource.h>

namespace pilothouse::bench {

// --deckhand PATH, --endpoints N (1000), --seconds S (20).
struct Options
{
    QString deckhand;
    int endpoints = 1000;
    int seconds = 20;
};

inline Options parseOptions(const QCoreApplication &app)
{
    QCommandLineParser p;
    p.addHelpOption();
    p.addOptions(
        { { QStringLiteral("deckhand"), QStringLiteral("deckhand binary"), QStringLiteral("PATH") },
          { QStringLiteral("endpoints"), QStringLiteral("how many (1000)"), QStringLiteral("N"),
            QStringLiteral("1000") },
          { QStringLiteral("seconds"), QStringLiteral("measured window (20)"), QStringLiteral("S"),
            QStringLiteral("20") } });
    p.process(app);
    return { p.value(QStringLiteral("deckhand")), p.value(QStringLiteral("endpoints")).toInt(),
             p.value(QStringLiteral("seconds")).toInt() };
}

inline double cpuSeconds()
{
    rusage u {};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec +
        u.ru_stime.tv_usec / 1e6;
}

inline quint16 freePort()
{
    QTcpServer s;
    s.listen(QHostAddress::LocalHost);
    return s.serverPort();
}

// Starts `binary serve` on SQLite in dir, listening on port; false (and why,
// on stderr) if it does not listen within 10 s.
inline bool startDeckhand(QProcess &deckhand, const QString &binary, const QString &dir,
                          quint16 port, const char *who)
{
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert(QStringLiteral("PORT"), QString::number(port));
    env.insert(QStringLiteral("DATABASE_URL"), QStringLiteral("sqlite://%1/b.db").arg(dir));
    env.insert(QStringLiteral("LOG_LEVEL"), QStringLiteral("error"));
    deckhand.setProcessEnvironment(env);
    deckhand.setStandardOutputFile(QProcess::nullDevice());
    deckhand.start(binary, { QStringLiteral("serve") });
    if (!deckhand.waitForStarted()) {
        std::fprintf(stderr, "%s: cannot start deckhand: %s\n", who,
                     qPrintable(deckhand.errorString()));
        return false;
    }
    QElapsedTimer wait;
    wait.start();
    for (;;) {
        QTcpSocket s;
        s.connectToHost(QHostAddress::LocalHost, port);
        if (s.waitForConnected(200))
            return true;
        if (wait.elapsed() > 10000) {
            std::fprintf(stderr, "%s: deckhand did not listen\n", who);
            return false;
        }
        QThread::msleep(10); // refused at once: not up yet
    }
}

// A 5 ms timer; how much later than due it fires, at worst, while measuring.
class StallProbe
{
public:
    StallProbe()
    {
        m_timer.setTimerType(Qt::PreciseTimer);
        m_timer.setInterval(5);
        QObject::connect(&m_timer, &QTimer::timeout, &m_timer, [this] {
            const qint64 gap = m_tick.restart();
            if (m_measuring)
                m_worstLateMs = std::max(m_worstLateMs, gap - 5);
        });
        m_tick.start();
        m_timer.start();
    }
    void measure()
    {
        m_measuring = true;
        m_tick.restart();
    }
    qint64 worstLateMs() const { return m_worstLateMs; }

private:
    QTimer m_timer;
    QElapsedTimer m_tick;
    qint64 m_worstLateMs = 0;
    bool m_measuring = false;
};

} // namespace pilothouse::bench
