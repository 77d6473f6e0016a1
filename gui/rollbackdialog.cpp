#include "rollbackdialog.h"

#include "style.h"

#include <QDialogButtonBox>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>

namespace pilothouse::gui {

RollbackDialog::RollbackDialog(const RollbackPlan &plan, const QString &environment, Kind kind,
                               int healthWindowMs, QWidget *parent, bool startsFirst)
    : QDialog(parent)
    , m_plan(plan)
    , m_headline(new QLabel(this))
    , m_change(new QLabel(this))
    , m_warning(new QLabel(this))
{
    const bool rollback = kind == Kind::Rollback;
    setWindowTitle(rollback ? tr("Roll back") : tr("Deploy"));
    setObjectName(QStringLiteral("rollbackDialog"));
    m_headline->setText((rollback ? tr("Roll back %1 in %2 to %3?") : tr("Deploy %3 to %1 in %2?"))
                            .arg(plan.service, environment, plan.toTag));
    QFont big = m_headline->font();
    big.setBold(true);
    big.setPointSizeF(big.pointSizeF() * 1.15);
    m_headline->setFont(big);
    m_headline->setWordWrap(true);
    m_change->setText(tr("%1 \u2192 %2")
                          .arg(tagWithDigest(plan.fromTag, plan.fromDigest),
                               tagWithDigest(plan.toTag, plan.toDigest)));
    m_change->setObjectName(QStringLiteral("rollbackChange"));
    m_change->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_warning->setObjectName(QStringLiteral("schemaWarning"));
    m_warning->setWordWrap(true);
    m_warning->setText(plan.schemaWarning);
    m_warning->setVisible(!plan.schemaWarning.isEmpty());
    m_warning->setStyleSheet(QStringLiteral("QLabel { border: 1px solid %1; border-radius: 4px; "
                                            "padding: 6px; }")
                                 .arg(colourOf(Tone::Warning).name()));
    m_warning->setAccessibleName(tr("Schema warning"));
    // What the environment's rollout strategy does, and what it costs.
    auto *gate = new QLabel(
        startsFirst
            ? tr("%1 on %2 starts next to %3, which keeps serving until the new one has passed "
                 "its health checks for %4 s; then %3 drains and is removed. If the new one "
                 "does not pass, it is removed and %3 never stopped: no outage either way.")
                  .arg(plan.service, plan.toTag, plan.fromTag)
                  .arg(healthWindowMs / 1000.0)
            : tr("%1 is recreated: a short outage while the new containers start. It must stay "
                 "healthy for %2 s; if it does not, %3 comes back by itself.")
                  .arg(plan.service)
                  .arg(healthWindowMs / 1000.0)
                  .arg(plan.fromTag),
        this);
    gate->setObjectName(QStringLiteral("rolloutNote"));
    gate->setWordWrap(true);

    auto *buttons = new QDialogButtonBox(QDialogButtonBox::Cancel, this);
    m_confirm = buttons->addButton(rollback ? tr("&Roll back") : tr("&Deploy"),
                                   QDialogButtonBox::AcceptRole);
    m_confirm->setObjectName(QStringLiteral("confirmRollback"));
    m_confirm->setIcon(icon(rollback ? "rollback" : "deploy"));
    // With a schema warning, the safe choice is the default.
    m_confirm->setDefault(plan.schemaWarning.isEmpty());
    buttons->button(QDialogButtonBox::Cancel)->setDefault(!plan.schemaWarning.isEmpty());
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

    auto *layout = new QVBoxLayout(this);
    layout->addWidget(m_headline);
    layout->addWidget(m_change);
    layout->addWidget(m_warning);
    layout->addWidget(gate);
    layout->addWidget(buttons);
    setMinimumWidth(460);
}

QString RollbackDialog::headline() const
{
    return m_headline->text();
}

QString RollbackDialog::change() const
{
    return m_change->text();
}

QString RollbackDialog::warning() const
{
    return m_warning->isVisibleTo(this) ? m_warning->text() : QString();
}

} // namespace pilothouse::gui
