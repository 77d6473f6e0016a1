#include "style.h"

#include <QApplication>
#include <QPainter>
#include <QPainterPath>
#include <QPixmap>

namespace pilothouse::gui {

Tone toneOf(ServiceHealth health)
{
    switch (health) {
    case ServiceHealth::Healthy:
        return Tone::Good;
    case ServiceHealth::Starting:
        return Tone::Busy;
    case ServiceHealth::Unhealthy:
        return Tone::Warning;
    case ServiceHealth::Down:
        return Tone::Bad;
    case ServiceHealth::Unknown:
        break;
    }
    return Tone::Neutral;
}

Tone toneOf(EndpointStatus status)
{
    switch (status) {
    case EndpointStatus::Pass:
        return Tone::Good;
    case EndpointStatus::Warn:
        return Tone::Busy;
    case EndpointStatus::Fail:
        return Tone::Bad;
    case EndpointStatus::Unknown:
        break;
    }
    return Tone::Neutral;
}

Tone toneOf(Deployment::Outcome outcome)
{
    switch (outcome) {
    case Deployment::Outcome::Succeeded:
        return Tone::Good;
    case Deployment::Outcome::Running:
        return Tone::Busy;
    case Deployment::Outcome::Reverted:
    case Deployment::Outcome::Interrupted:
        return Tone::Warning;
    case Deployment::Outcome::Failed:
        return Tone::Bad;
    case Deployment::Outcome::Cancelled:
    case Deployment::Outcome::Refused:
        break;
    }
    return Tone::Neutral;
}

QColor colourOf(Tone tone)
{
    // Mid tones: enough contrast against both a light and a dark window.
    switch (tone) {
    case Tone::Good:
        return QColor(0x2e, 0x9d, 0x57);
    case Tone::Busy:
        return QColor(0xd6, 0xa2, 0x1e);
    case Tone::Warning:
        return QColor(0xe0, 0x6a, 0x2b);
    case Tone::Bad:
        return QColor(0xcc, 0x3d, 0x3d);
    case Tone::Neutral:
        break;
    }
    return QColor(0x8a, 0x94, 0xa6);
}

QColor textOn(const QColor &background)
{
    const double luminance =
        0.2126 * background.redF() + 0.7152 * background.greenF() + 0.0722 * background.blueF();
    return luminance > 0.55 ? QColor(0x1a, 0x1a, 0x1a) : QColor(Qt::white);
}

void paintBadge(QPainter *painter, const QRect &rect, Tone tone, const QString &text, bool dimmed)
{
    painter->save();
    painter->setRenderHint(QPainter::Antialiasing);
    QColor bg = colourOf(tone);
    if (dimmed)
        bg.setAlphaF(0.45);
    const QFontMetrics fm(painter->font());
    const int w = std::min(rect.width() - 4, fm.horizontalAdvance(text) + fm.height());
    const int h = std::min(rect.height() - 4, fm.height() + 4);
    const QRect badge(rect.left() + 2, rect.center().y() - h / 2, w, h);
    QPainterPath path;
    path.addRoundedRect(badge, h / 2.0, h / 2.0);
    painter->fillPath(path, bg);
    painter->setPen(dimmed ? textOn(bg).darker(120) : textOn(bg));
    painter->drawText(badge, Qt::AlignCenter, fm.elidedText(text, Qt::ElideRight, w - 6));
    painter->restore();
}

QIcon icon(const char *name)
{
    return QIcon(QStringLiteral(":/icons/%1.svg").arg(QLatin1String(name)));
}

QIcon statusIcon(Tone tone)
{
    const QIcon base = icon("pilothouse");
    QIcon out;
    for (int size : { 16, 22, 32, 48, 64 }) {
        for (qreal dpr : { 1.0, 2.0 }) {
            QPixmap pm = base.pixmap(QSize(size, size), dpr);
            pm.setDevicePixelRatio(dpr);
            QPainter p(&pm);
            p.setRenderHint(QPainter::Antialiasing);
            const qreal d = size * 0.46;
            const QRectF dot(size - d - 0.5, size - d - 0.5, d, d);
            p.setPen(QPen(Qt::white, size / 16.0));
            p.setBrush(colourOf(tone));
            p.drawEllipse(dot);
            p.end();
            out.addPixmap(pm);
        }
    }
    return out;
}

QString label(ServiceHealth health)
{
    switch (health) {
    case ServiceHealth::Healthy:
        return QApplication::translate("Status", "healthy");
    case ServiceHealth::Starting:
        return QApplication::translate("Status", "starting");
    case ServiceHealth::Unhealthy:
        return QApplication::translate("Status", "unhealthy");
    case ServiceHealth::Down:
        return QApplication::translate("Status", "down");
    case ServiceHealth::Unknown:
        break;
    }
    return QApplication::translate("Status", "unknown");
}

QString label(EndpointStatus status)
{
    switch (status) {
    case EndpointStatus::Pass:
        return QApplication::translate("Status", "pass");
    case EndpointStatus::Warn:
        return QApplication::translate("Status", "warn");
    case EndpointStatus::Fail:
        return QApplication::translate("Status", "fail");
    case EndpointStatus::Unknown:
        break;
    }
    return QApplication::translate("Status", "unknown");
}

} // namespace pilothouse::gui
