#include "env/yaml.h"

#include <QJsonArray>
#include <QJsonObject>
#include <QRegularExpression>
#include <memory>
#include <yaml.h>

namespace pilothouse {

namespace {

// An alias can name a node that names other aliases; written out as JSON
// that grows with every level ("billion laughs"). A compose file has a few
// thousand values at most.
constexpr int kMaxValues = 200000;
constexpr int kMaxDepth = 64;

QJsonValue plainScalar(const QString &text)
{
    static const QRegularExpression integer(QStringLiteral("^[-+]?(0|[1-9][0-9]*)$"));
    static const QRegularExpression real(
        QStringLiteral("^[-+]?([0-9]+\\.[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?$"));
    if (text.isEmpty() || text == QLatin1String("~") || text == QLatin1String("null") ||
        text == QLatin1String("Null") || text == QLatin1String("NULL"))
        return QJsonValue::Null;
    if (text == QLatin1String("true") || text == QLatin1String("True") ||
        text == QLatin1String("TRUE"))
        return true;
    if (text == QLatin1String("false") || text == QLatin1String("False") ||
        text == QLatin1String("FALSE"))
        return false;
    if (integer.match(text).hasMatch()) {
        bool ok = false;
        const qlonglong n = text.toLongLong(&ok);
        if (ok)
            return QJsonValue(n);
    }
    if (real.match(text).hasMatch())
        return text.toDouble();
    return text;
}

struct Converter
{
    yaml_document_t *doc = nullptr;
    int values = 0;
    QString error;

    QJsonValue convert(yaml_node_t *node, int depth)
    {
        if (!node || !error.isEmpty())
            return {};
        if (++values > kMaxValues || depth > kMaxDepth) {
            error = QStringLiteral("too deeply nested or too many aliased values (over %1)")
                        .arg(kMaxValues);
            return {};
        }
        switch (node->type) {
        case YAML_SCALAR_NODE: {
            const QString text =
                QString::fromUtf8(reinterpret_cast<const char *>(node->data.scalar.value),
                                  qsizetype(node->data.scalar.length));
            // libyaml's loader tags every untagged scalar !!str, so only
            // the quoting tells a string from a number or a boolean.
            if (node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return text;
            return plainScalar(text);
        }
        case YAML_SEQUENCE_NODE: {
            QJsonArray out;
            for (yaml_node_item_t *item = node->data.sequence.items.start;
                 item < node->data.sequence.items.top; ++item)
                out.append(convert(yaml_document_get_node(doc, *item), depth + 1));
            return out;
        }
        case YAML_MAPPING_NODE: {
            QJsonObject own;
            QJsonObject merged;
            for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
                 pair < node->data.mapping.pairs.top; ++pair) {
                yaml_node_t *keyNode = yaml_document_get_node(doc, pair->key);
                yaml_node_t *valueNode = yaml_document_get_node(doc, pair->value);
                if (!keyNode || keyNode->type != YAML_SCALAR_NODE) {
                    error = QStringLiteral("line %1: a mapping key that is not a plain value")
                                .arg(node->start_mark.line + 1);
                    return {};
                }
                const QString key =
                    QString::fromUtf8(reinterpret_cast<const char *>(keyNode->data.scalar.value),
                                      qsizetype(keyNode->data.scalar.length));
                if (key == QLatin1String("<<") &&
                    keyNode->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
                    // Merge keys: earlier sources win over later ones, and
                    // the mapping's own keys over all of them.
                    const QJsonValue source = convert(valueNode, depth + 1);
                    const QJsonArray sources =
                        source.isArray() ? source.toArray() : QJsonArray { source };
                    for (const QJsonValue &s : sources) {
                        const QJsonObject o = s.toObject();
                        for (auto it = o.begin(); it != o.end(); ++it) {
                            if (!merged.contains(it.key()))
                                merged.insert(it.key(), it.value());
                        }
                    }
                    continue;
                }
                own.insert(key, convert(valueNode, depth + 1));
            }
            for (auto it = merged.begin(); it != merged.end(); ++it) {
                if (!own.contains(it.key()))
                    own.insert(it.key(), it.value());
            }
            return own;
        }
        case YAML_NO_NODE:
            break;
        }
        return {};
    }
};

} // namespace

Expected<QJsonValue> parseYaml(const QByteArray &text)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return Error { QStringLiteral("out of memory starting the YAML parser") };
    const std::unique_ptr<yaml_parser_t, void (*)(yaml_parser_t *)> parserGuard(&parser,
                                                                                yaml_parser_delete);
    yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char *>(text.constData()),
                                 size_t(text.size()));
    yaml_document_t doc;
    if (!yaml_parser_load(&parser, &doc)) {
        const yaml_mark_t &mark = parser.problem_mark.line || parser.problem_mark.column
            ? parser.problem_mark
            : parser.context_mark;
        QString what = QString::fromUtf8(parser.problem ? parser.problem : "not valid YAML");
        if (parser.context)
            what = QString::fromUtf8(parser.context) + QStringLiteral(": ") + what;
        return Error { QStringLiteral("line %1, column %2: %3")
                           .arg(mark.line + 1)
                           .arg(mark.column + 1)
                           .arg(what) };
    }
    const std::unique_ptr<yaml_document_t, void (*)(yaml_document_t *)> docGuard(
        &doc, yaml_document_delete);
    Converter c;
    c.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root)
        return QJsonValue(QJsonValue::Null); // an empty stream
    QJsonValue value = c.convert(root, 0);
    if (!c.error.isEmpty())
        return Error { c.error };
    return value;
}

} // namespace pilothouse
