#pragma once

#include <QObject>

class QSocketNotifier;

// SIGINT, SIGTERM and SIGHUP, heard on the event loop (a handler only writes
// a byte to a pipe; no Qt call runs inside it). The window and pilothousectl
// treat them alike: the first stops what they own, then they exit; a second
// one exits at once (children still end with them: core/childprocess.h).
namespace pilothouse {

class TerminationSignals final : public QObject
{
    Q_OBJECT
public:
    // Installs the handlers; one instance per process.
    explicit TerminationSignals(QObject *parent = nullptr);
    ~TerminationSignals() override;

    int count() const { return m_count; }
    static QString name(int signo); // "SIGTERM"

signals:
    // count: how many have arrived so far, this one included.
    void received(int signo, int count);

private:
    void drain();

    QSocketNotifier *m_notifier = nullptr;
    int m_count = 0;
};

} // namespace pilothouse
