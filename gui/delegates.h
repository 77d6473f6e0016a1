#pragma once

#include "style.h"

#include <QStyledItemDelegate>
#include <functional>

// Cells that draw more than text: a status badge, a latency sparkline.
namespace pilothouse::gui {

// Paints StatusRole as a coloured badge with the cell's text in it.
class StatusDelegate final : public QStyledItemDelegate
{
    Q_OBJECT
public:
    using ToneOf = std::function<Tone(int status)>;
    StatusDelegate(ToneOf toneOf, QObject *parent = nullptr);

    void paint(QPainter *painter, const QStyleOptionViewItem &option,
               const QModelIndex &index) const override;
    QSize sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const override;

private:
    ToneOf m_toneOf;
};

// Paints HistoryRole (recent latencies; < 0 is no answer) as a sparkline,
// with failures as red ticks at the bottom.
class SparklineDelegate final : public QStyledItemDelegate
{
    Q_OBJECT
public:
    using QStyledItemDelegate::QStyledItemDelegate;

    void paint(QPainter *painter, const QStyleOptionViewItem &option,
               const QModelIndex &index) const override;
    QSize sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const override;
};

// Colours a log line by its level (LevelRole): errors red, warnings amber, debug dim.
class LogLineDelegate final : public QStyledItemDelegate
{
    Q_OBJECT
public:
    using QStyledItemDelegate::QStyledItemDelegate;

protected:
    void initStyleOption(QStyleOptionViewItem *option, const QModelIndex &index) const override;
};

} // namespace pilothouse::gui
