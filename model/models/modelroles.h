#pragma once

#include <Qt>

// The roles every item model of the panel answers beyond Qt's own, one
// vocabulary for the views and the tests.
namespace pilothouse {

enum ModelRole {
    SortRole = Qt::UserRole + 1,
    StatusRole, // the row's status as an int (ServiceHealth, EndpointStatus, ...)
    DetailRole,
    KeyRole, // what identifies the row (a name, an id)
    StaleRole, // true: last known from an earlier run, not live yet
    HistoryRole, // EndpointModel: recent latencies (QList<float>, < 0: no answer)
    LevelRole // LogModel: the line's level ("error", "warning", ...), if it has one
};

} // namespace pilothouse
