#pragma once

#include "deploy/deployer.h"

#include <QDialog>

class QLabel;
class QPushButton;

namespace pilothouse::gui {

// "Roll back api in staging from sha-b to sha-a?": what will change, any
// schema warning, and what happens if the new tag fails its health gate.
class RollbackDialog final : public QDialog
{
    Q_OBJECT
public:
    enum class Kind { Rollback, Deploy };
    RollbackDialog(const RollbackPlan &plan, const QString &environment, Kind kind,
                   int healthWindowMs, QWidget *parent = nullptr, bool startsFirst = false);

    const RollbackPlan &plan() const { return m_plan; }
    QString headline() const;
    QString change() const;
    QString warning() const;
    QPushButton *confirmButton() const { return m_confirm; }

private:
    RollbackPlan m_plan;
    QLabel *m_headline;
    QLabel *m_change;
    QLabel *m_warning;
    QPushButton *m_confirm;
};

} // namespace pilothouse::gui
