#pragma once

#include <QString>
#include <utility>
#include <variant>

namespace pilothouse {

// An error a person can act on: what failed and what to do about it.
struct Error
{
    QString message;
};

// A value or an Error (std::expected is C++23; Qt 6.4 builds use C++20).
template<typename T> class [[nodiscard]] Expected
{
public:
    Expected(T value)
        : m_data(std::in_place_index<0>, std::move(value))
    { }
    Expected(Error error)
        : m_data(std::in_place_index<1>, std::move(error))
    { }

    bool ok() const { return m_data.index() == 0; }
    explicit operator bool() const { return ok(); }
    T &value() { return std::get<0>(m_data); }
    const T &value() const { return std::get<0>(m_data); }
    T &operator*() { return value(); }
    const T &operator*() const { return value(); }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    const QString &error() const { return std::get<1>(m_data).message; }

private:
    std::variant<T, Error> m_data;
};

struct Done
{
};
using Outcome = Expected<Done>;

inline Outcome success()
{
    return Done {};
}

} // namespace pilothouse
