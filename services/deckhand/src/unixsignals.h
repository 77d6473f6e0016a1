#pragma once

#include <QObject>
#include <QSocketNotifier>
#include <initializer_list>

namespace deckhand {

// Turns POSIX signals into a Qt signal on the event loop (self-pipe trick):
// the handler only writes a byte, everything else runs as ordinary code.
class UnixSignals final : public QObject
{
    Q_OBJECT
public:
    explicit UnixSignals(std::initializer_list<int> numbers, QObject *parent = nullptr);
    ~UnixSignals() override;

Q_SIGNALS:
    void received(int signal);

private:
    QSocketNotifier *m_notifier = nullptr;
};

} // namespace deckhand
