#pragma once

#include "core/session.h"
#include "deploy/history.h"
#include "monitor/healthmonitor.h"

#include <QColor>
#include <QIcon>
#include <QString>

class QPainter;
class QRect;
class QPalette;

// How statuses look: a colour that reads on light and dark palettes, always
// with its word next to it (never colour alone), and the icons.
namespace pilothouse::gui {

enum class Tone { Good, Busy, Warning, Bad, Neutral };

Tone toneOf(ServiceHealth health);
Tone toneOf(EndpointStatus status);
Tone toneOf(Deployment::Outcome outcome);
QColor colourOf(Tone tone);
// Black or white, whichever reads better on the colour.
QColor textOn(const QColor &background);

// A rounded badge with the word in it, centred in rect.
void paintBadge(QPainter *painter, const QRect &rect, Tone tone, const QString &text,
                bool dimmed = false);
// The application icon with a status dot (the tray, the sidebar).
QIcon statusIcon(Tone tone);
QIcon icon(const char *name); // :/icons/<name>.svg

// Words for a person, translated.
QString label(ServiceHealth health);
QString label(EndpointStatus status);

} // namespace pilothouse::gui
