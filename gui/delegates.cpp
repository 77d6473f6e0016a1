#include "delegates.h"

#include "models/models.h"

#include <QApplication>
#include <QPainter>
#include <QPainterPath>

namespace pilothouse::gui {

StatusDelegate::StatusDelegate(ToneOf toneOf, QObject *parent)
    : QStyledItemDelegate(parent)
    , m_toneOf(std::move(toneOf))
{ }

void StatusDelegate::paint(QPainter *painter, const QStyleOptionViewItem &option,
                           const QModelIndex &index) const
{
    const QVariant status = index.data(StatusRole);
    if (!status.isValid()) {
        QStyledItemDelegate::paint(painter, option, index);
        return;
    }
    // Background and selection as the style draws them, then the badge.
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    opt.text.clear();
    const QWidget *widget = option.widget;
    QStyle *style = widget ? widget->style() : QApplication::style();
    style->drawControl(QStyle::CE_ItemViewItem, &opt, painter, widget);
    painter->setFont(option.font);
    paintBadge(painter, option.rect.adjusted(2, 1, -2, -1), m_toneOf(status.toInt()),
               index.data(Qt::DisplayRole).toString(), index.data(StaleRole).toBool());
}

QSize StatusDelegate::sizeHint(const QStyleOptionViewItem &option, const QModelIndex &index) const
{
    QSize s = QStyledItemDelegate::sizeHint(option, index);
    const QFontMetrics fm(option.font);
    s.setWidth(
        std::max(s.width(), fm.horizontalAdvance(index.data().toString()) + fm.height() + 12));
    s.setHeight(std::max(s.height(), fm.height() + 8));
    return s;
}

void SparklineDelegate::paint(QPainter *painter, const QStyleOptionViewItem &option,
                              const QModelIndex &index) const
{
    QStyleOptionViewItem opt = option;
    initStyleOption(&opt, index);
    const QWidget *widget = option.widget;
    QStyle *style = widget ? widget->style() : QApplication::style();
    style->drawControl(QStyle::CE_ItemViewItem, &opt, painter, widget);

    const QList<float> samples = index.data(HistoryRole).value<QList<float>>();
    if (samples.isEmpty())
        return;
    const QRectF area = QRectF(option.rect).adjusted(4, 4, -4, -4);
    float top = 1.0f;
    for (float v : samples)
        top = std::max(top, v);
    const qreal step = samples.size() > 1 ? area.width() / (samples.size() - 1) : 0;
    painter->save();
    painter->setRenderHint(QPainter::Antialiasing);
    QPainterPath line;
    bool drawing = false;
    const QColor ok = (option.state & QStyle::State_Selected)
        ? option.palette.color(QPalette::HighlightedText)
        : colourOf(Tone::Good);
    QPen fail(colourOf(Tone::Bad), 2);
    for (qsizetype i = 0; i < samples.size(); ++i) {
        const qreal x = area.left() + step * i;
        const float v = samples.at(i);
        if (v < 0) {
            painter->setPen(fail);
            painter->drawLine(QPointF(x, area.bottom() - 4), QPointF(x, area.bottom()));
            drawing = false;
            continue;
        }
        const QPointF p(x, area.bottom() - (v / top) * area.height());
        if (drawing)
            line.lineTo(p);
        else
            line.moveTo(p);
        drawing = true;
    }
    painter->setPen(QPen(ok, 1.4));
    painter->setBrush(Qt::NoBrush);
    painter->drawPath(line);
    painter->restore();
}

QSize SparklineDelegate::sizeHint(const QStyleOptionViewItem &option,
                                  const QModelIndex &index) const
{
    QSize s = QStyledItemDelegate::sizeHint(option, index);
    s.setWidth(std::max(s.width(), 130));
    return s;
}

void LogLineDelegate::initStyleOption(QStyleOptionViewItem *option, const QModelIndex &index) const
{
    QStyledItemDelegate::initStyleOption(option, index);
    const QString level = index.data(LevelRole).toString();
    if (option->state & QStyle::State_Selected)
        return;
    QColor colour;
    if (level == QLatin1String("error") || level == QLatin1String("critical") ||
        level == QLatin1String("fatal"))
        colour = colourOf(Tone::Bad);
    else if (level == QLatin1String("warning") || level == QLatin1String("warn"))
        colour = colourOf(Tone::Warning);
    else if (level == QLatin1String("debug"))
        colour = option->palette.color(QPalette::Disabled, QPalette::Text);
    if (colour.isValid())
        option->palette.setColor(QPalette::Text, colour);
}

} // namespace pilothouse::gui
