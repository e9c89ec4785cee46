import java.io.File;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.ZipFile;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.transform.Source;
import javax.xml.transform.stream.StreamSource;
import javax.xml.validation.SchemaFactory;
import javax.xml.validation.Validator;
import org.w3c.dom.Element;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;
import org.xml.sax.ErrorHandler;
import org.xml.sax.SAXParseException;

/**
 * Validates Oozie XML files against the schemas inside the oozie-client jar.
 *
 *   java Validate.java oozie-client.jar workflow.xml coordinator.xml ...
 *
 * Each file is checked against the schema versions its own namespaces name (uri:oozie:workflow:1.0 →
 * oozie-workflow-1.0.xsd, uri:oozie:spark-action:1.0 → spark-action-1.0.xsd, ...), loaded together so that
 * actions inside a workflow are checked too. Prints one line per problem (file:line:column: message) and exits 1.
 */
public class Validate {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: java Validate.java oozie-client.jar file.xml...");
            System.exit(2);
        }
        File jar = new File(args[0]);
        int problems = 0;
        for (int i = 1; i < args.length; i++) {
            problems += validate(jar, new File(args[i]));
        }
        System.exit(problems == 0 ? 0 : 1);
    }

    static int validate(File jar, File xml) throws Exception {
        List<String> errors = new ArrayList<>();
        List<Source> schemas = new ArrayList<>();
        try (ZipFile zip = new ZipFile(jar)) {
            for (String namespace : namespaces(xml)) {
                String xsd = schemaFile(namespace);
                if (xsd == null || zip.getEntry(xsd) == null) {
                    errors.add(xml + ": no schema in " + jar.getName() + " for namespace '" + namespace + "'");
                    continue;
                }
                schemas.add(new StreamSource("jar:" + jar.toURI() + "!/" + xsd));
            }
        } catch (SAXParseException e) {
            errors.add(line(xml, e));
        } catch (java.io.IOException e) {
            errors.add(xml + ": cannot read: " + e.getMessage());
        }
        if (errors.isEmpty()) {
            SchemaFactory factory = SchemaFactory.newInstance(XMLConstants.W3C_XML_SCHEMA_NS_URI);
            Validator validator = factory.newSchema(schemas.toArray(new Source[0])).newValidator();
            validator.setErrorHandler(new ErrorHandler() {
                public void warning(SAXParseException e) {}
                public void error(SAXParseException e) { errors.add(line(xml, e)); }
                public void fatalError(SAXParseException e) { errors.add(line(xml, e)); }
            });
            try {
                validator.validate(new StreamSource(xml));
            } catch (SAXParseException e) {
                if (errors.isEmpty()) errors.add(line(xml, e));
            }
        }
        for (String error : errors) System.out.println(error);
        if (errors.isEmpty()) System.out.println(xml + ": valid (" + schemas.size() + " schemas)");
        return errors.size();
    }

    static String line(File xml, SAXParseException e) {
        return xml + ":" + e.getLineNumber() + ":" + e.getColumnNumber() + ": " + e.getMessage();
    }

    /** The Oozie namespaces the document uses, the root element's first. */
    static Set<String> namespaces(File xml) throws Exception {
        DocumentBuilderFactory factory = DocumentBuilderFactory.newInstance();
        factory.setNamespaceAware(true);
        javax.xml.parsers.DocumentBuilder builder = factory.newDocumentBuilder();
        builder.setErrorHandler(new ErrorHandler() {  // report, don't print: the caller turns it into one line
            public void warning(SAXParseException e) {}
            public void error(SAXParseException e) throws SAXParseException { throw e; }
            public void fatalError(SAXParseException e) throws SAXParseException { throw e; }
        });
        Set<String> found = new LinkedHashSet<>();
        collect(builder.parse(xml).getDocumentElement(), found);
        return found;
    }

    static void collect(Element element, Set<String> found) {
        String namespace = element.getNamespaceURI();
        found.add(namespace == null ? "" : namespace);
        NodeList children = element.getChildNodes();
        for (int i = 0; i < children.getLength(); i++) {
            Node child = children.item(i);
            if (child instanceof Element) collect((Element) child, found);
        }
    }

    /** uri:oozie:workflow:1.0 → oozie-workflow-1.0.xsd; uri:oozie:spark-action:1.0 → spark-action-1.0.xsd. */
    static String schemaFile(String namespace) {
        String[] parts = namespace.split(":");
        if (parts.length != 4 || !parts[0].equals("uri") || !parts[1].equals("oozie")) return null;
        String name = parts[2].endsWith("-action") ? parts[2] : "oozie-" + parts[2];
        return name + "-" + parts[3] + ".xsd";
    }
}
