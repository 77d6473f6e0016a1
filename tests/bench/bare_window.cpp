// The reference for the window's start-up benchmark: a bare QMainWindow with
// a table, the least a Qt Widgets tool shows. It reports its first painted
// frame the same way the panel does (PILOTHOUSE_FIRST_PAINT_FILE).
#include <QApplication>
#include <QEvent>
#include <QFile>
#include <QHeaderView>
#include <QMainWindow>
#include <QStandardItemModel>
#include <QTableView>

namespace {

class Window final : public QMainWindow
{
public:
    Window()
    {
        auto *model = new QStandardItemModel(4, 7, this);
        for (int r = 0; r < 4; ++r) {
            for (int c = 0; c < 7; ++c)
                model->setItem(r, c, new QStandardItem(QStringLiteral("cell %1.%2").arg(r).arg(c)));
        }
        auto *view = new QTableView(this);
        view->setModel(model);
        setCentralWidget(view);
        resize(1180, 740);
        installEventFilter(this);
    }

protected:
    bool eventFilter(QObject *watched, QEvent *event) override
    {
        if (watched == this && event->type() == QEvent::Paint && !m_painted) {
            m_painted = true;
            const QString report = qEnvironmentVariable("PILOTHOUSE_FIRST_PAINT_FILE");
            QFile status(QStringLiteral("/proc/self/status"));
            QString rss, hwm;
            if (status.open(QIODevice::ReadOnly)) {
                for (const QByteArray &line : status.readAll().split('\n')) {
                    if (line.startsWith("VmRSS:"))
                        rss = QString::fromLatin1(line.mid(6).simplified().split(' ').value(0));
                    else if (line.startsWith("VmHWM:"))
                        hwm = QString::fromLatin1(line.mid(6).simplified().split(' ').value(0));
                }
            }
            if (!report.isEmpty()) {
                QFile f(report);
                if (f.open(QIODevice::WriteOnly))
                    f.write(QStringLiteral("rss_kb=%1 hwm_kb=%2\n").arg(rss, hwm).toUtf8());
            }
        }
        return QMainWindow::eventFilter(watched, event);
    }

private:
    bool m_painted = false;
};

} // namespace

int main(int argc, char *argv[])
{
    QApplication app(argc, argv);
    Window w;
    w.show();
    return app.exec();
}
