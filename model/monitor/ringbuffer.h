#pragma once

#include <QList>

namespace pilothouse {

// Fixed-capacity history: pushing onto a full buffer drops the oldest entry,
// so memory stays bounded however long the panel runs.
template<typename T> class RingBuffer
{
public:
    explicit RingBuffer(qsizetype capacity = 120)
        : m_capacity(capacity > 0 ? capacity : 1)
    { }

    void push(const T &value)
    {
        if (m_items.size() < m_capacity) {
            m_items.append(value);
        } else {
            m_items[m_head] = value;
            m_head = (m_head + 1) % m_capacity;
        }
    }
    qsizetype size() const { return m_items.size(); }
    qsizetype capacity() const { return m_capacity; }
    bool isEmpty() const { return m_items.isEmpty(); }
    // 0 is the oldest.
    const T &at(qsizetype i) const { return m_items.at((m_head + i) % m_items.size()); }
    const T &last() const { return at(size() - 1); }
    QList<T> toList() const
    {
        QList<T> out;
        out.reserve(size());
        for (qsizetype i = 0; i < size(); ++i)
            out << at(i);
        return out;
    }
    void clear()
    {
        m_items.clear();
        m_head = 0;
    }

private:
    QList<T> m_items;
    qsizetype m_capacity;
    qsizetype m_head = 0;
};

} // namespace pilothouse
