//! Column (and JSON key) names: split into lower-case words (`customerEmail`, `e_mail_2`,
//! `Telefonnummer`) and matched against name hints in several languages. A hint is a word
//! sequence; long single words also match inside compound names (`kontaktemail`,
//! `telefonnummer`); words like `id`, `type` or `verified` at the end say the column is about
//! the thing, not the thing itself (`email_verified`, `phone_type`).

use super::Kind;

/// Lower-case words of a name: separators, camelCase and letter/digit boundaries split it.
pub fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev: Option<char> = None;
    for c in name.chars() {
        let boundary = match prev {
            _ if !c.is_alphanumeric() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                prev = None;
                continue;
            }
            Some(p) => {
                (p.is_lowercase() && c.is_uppercase()) || (p.is_alphabetic() != c.is_alphabetic())
            }
            None => false,
        };
        if boundary && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
        prev = Some(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|w| !w.chars().all(|c| c.is_ascii_digit()));
    out
}

/// Hints in priority order: the first that matches wins (`ip_address` is an IP address
/// before it is an address, `email_address` an e-mail address).
#[rustfmt::skip]
const HINTS: &[(Kind, &[&str])] = &[
    (Kind::IpAddress, &["ip", "ip address", "ipaddr", "ipaddress", "ipv4", "ipv6", "remote addr",
        "client addr", "inet addr",]),
    (Kind::Email, &["email", "e mail", "mail", "mail address", "mailaddress", "correo", "courriel",
        "mailadresse",]),
    (Kind::PaymentCard, &["card number", "cardnumber", "credit card", "creditcard", "cc number",
        "ccnum", "cc num", "pan", "card no", "card num", "kreditkarte", "tarjeta",]),
    (Kind::Iban, &["iban", "bank account", "account number", "accountnumber", "kontonummer",
        "bank acct", "acct no", "rekeningnummer",]),
    (Kind::NationalId, &["ssn", "social security", "nin", "nino", "sin", "national id",
        "nationalid", "national number", "tax id", "taxid", "tin", "dni", "nif", "nie", "cpf",
        "curp", "pesel", "bsn", "personnummer", "codice fiscale", "codicefiscale", "passport",
        "aadhaar", "nir", "insee", "steuer id", "steuerid", "steuernummer", "id number",
        "identity number", "driver license", "drivers license", "driving licence", "license number",
        "licence number", "personalausweis", "ausweisnummer", "social insurance", "personal id",
        "citizen id",]),
    (Kind::Phone, &["phone", "telephone", "tel", "telefon", "telefono", "teléfono", "téléphone",
        "mobile", "cell", "cellphone", "handy", "fax", "msisdn", "celular", "movil", "móvil",
        "portable", "phone number", "phonenumber", "mobil", "rufnummer", "cellulare",]),
    (Kind::BirthDate, &["dob", "birth", "birthday", "birthdate", "date of birth", "dateofbirth",
        "geburtsdatum", "geburtstag", "nacimiento", "naissance", "nascita", "born", "birth date",]),
    (Kind::FirstName, &["first name", "firstname", "given name", "givenname", "forename", "fname",
        "vorname", "prenom", "prénom", "nombre", "middle name",]),
    (Kind::LastName, &["last name", "lastname", "surname", "family name", "familyname", "lname",
        "nachname", "apellido", "apellidos", "cognome", "maiden name", "achternaam",]),
    (Kind::FullName, &["full name", "fullname", "display name", "legal name", "contact name",
        "contactname", "customer name", "person name", "patient name", "employee name",
        "client name", "holder name", "cardholder", "card holder", "account holder",
        "recipient name", "guest name", "student name", "member name", "author name", "ship name",
        "recipient", "addressee", "contact person", "ansprechpartner",]),
    (Kind::Secret, &["password", "passwd", "pwd", "pass hash", "secret", "token", "api key",
        "apikey", "access key", "otp", "salt", "private key", "pin", "passcode", "passwort",
        "contrasena", "contraseña", "mot de passe",]),
    (Kind::PostalCode, &["zip", "zipcode", "zip code", "postal", "postcode", "post code",
        "postalcode", "plz", "postleitzahl", "codigo postal", "code postal",]),
    (Kind::City, &["city", "town", "ort", "stadt", "ciudad", "ville", "citta", "città",
        "municipality", "locality", "wohnort",]),
    (Kind::StreetAddress, &["address", "street", "addr", "address line", "street address",
        "strasse", "straße", "calle", "rue", "direccion", "dirección", "adresse", "indirizzo",
        "endereco", "endereço", "anschrift", "address1", "address2", "line1", "line2",
        "house number", "hausnummer",]),
    (Kind::Image, &["photo", "avatar", "picture", "image", "portrait", "signature", "selfie",
        "headshot", "face", "foto", "bild", "scan",]),
];

/// Words at the end of a name that make it about the value rather than the value itself.
#[rustfmt::skip]
const NOT_THE_VALUE: &[&str] = &[
    "id", "ids", "type", "types", "kind", "status", "count", "cnt", "verified", "confirmed",
    "enabled", "valid", "validated", "format", "template", "flag", "opt", "optin", "optout",
    "consent", "sent", "bounced", "provider", "category", "length", "len", "policy", "preference",
    "preferences", "frequency", "locale", "language", "lang", "visible", "public", "required",
    "allowed", "changed", "updated", "expires", "expiry", "expired", "attempts", "size", "width",
    "height", "url", "uri", "path", "mime", "version", "hint", "reset", "strength", "algorithm",
    "algo", "rules", "code", "prefix", "country", "region", "hash", "hashed", "digest", "masked",
    "last4", "suffix", "label",
];

/// Words at the start of a name that make it about the value (`is_email_verified`,
/// `num_phones`, `has_photo`).
#[rustfmt::skip]
const NOT_THE_VALUE_FIRST: &[&str] = &[
    "is", "has", "num", "n", "count", "total", "max", "min", "allow", "use", "default",
];

/// Name words that make a bare `name` a person's.
#[rustfmt::skip]
pub const PERSON_WORDS: &[&str] = &[
    "customer", "contact", "person", "patient", "employee", "user", "member", "client", "author",
    "owner", "holder", "recipient", "guest", "student", "teacher", "doctor", "physician", "nurse",
    "passenger", "driver", "applicant", "candidate", "buyer", "seller", "tenant", "visitor",
    "subscriber", "beneficiary", "insured", "spouse", "parent", "child", "emergency", "legal",
    "maiden", "nick", "sender", "reviewer", "manager", "agent", "rep", "attendee", "participant",
    "volunteer", "donor", "player",
];

/// Hints matched only as whole words.
const ABBREVIATIONS: &[&str] = &["fname", "lname", "ccnum", "passwd", "ipaddr"];

fn matches(words: &[String], compact: &str, hint: &str) -> bool {
    let hw: Vec<&str> = hint.split(' ').collect();
    if hw.len() == 1 {
        let h = hw[0];
        // Long words also inside compound names; short ones only as whole words.
        // Abbreviations only as whole words: `lname` is not inside `fullname`.
        let inside = h.chars().count() >= 5 && !ABBREVIATIONS.contains(&h);
        return words.iter().any(|w| w == h) || (inside && compact.contains(h));
    }
    words
        .windows(hw.len())
        .any(|win| win.iter().zip(&hw).all(|(a, b)| a == b))
        || compact.contains(&hw.concat())
}

/// What the name says the column holds, if anything. `name` alone (or with a person word)
/// is reported as `Kind::FullName` with `weak = true`: the values must confirm it.
pub fn hint(name: &str) -> Option<(Kind, bool)> {
    let words = words(name);
    let last = words.last()?.as_str();
    let about = NOT_THE_VALUE.contains(&last)
        || (words.len() > 1 && NOT_THE_VALUE_FIRST.contains(&words[0].as_str()));
    // A password's hash is still a secret.
    let hashed_secret = matches!(last, "hash" | "hashed" | "digest");
    let compact = words.concat();
    for (kind, hints) in HINTS {
        let Some(h) = hints.iter().find(|h| matches(&words, &compact, h)) else {
            continue;
        };
        // In a compound name (`creditcardid`, `phonenumbertypeid`) what follows the hint
        // says the same as a last word would.
        let hc = h.replace(' ', "");
        let tail = compact
            .rfind(&hc)
            .map(|at| &compact[at + hc.len()..])
            .unwrap_or("");
        let ends = |w: &str| last == w || tail.ends_with(w);
        let about = about
            || NOT_THE_VALUE
                .iter()
                .any(|n| n.len() >= 2 && tail.ends_with(n));
        let hashed_secret = hashed_secret
            || ["hash", "hashed", "digest"]
                .iter()
                .any(|w| tail.ends_with(w));
        let postal_code = ends("code") && *kind == Kind::PostalCode;
        if about && !(hashed_secret && *kind == Kind::Secret) && !postal_code {
            return None;
        }
        return Some((*kind, false));
    }
    if about {
        return None;
    }
    if words
        .iter()
        .any(|w| w == "name" || w == "names" || w == "nom" || w == "nombre")
    {
        let person = words.iter().any(|w| PERSON_WORDS.contains(&w.as_str()));
        return Some((Kind::FullName, !person));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_words() {
        assert_eq!(words("customerEmail"), vec!["customer", "email"]);
        assert_eq!(words("E_Mail_2"), vec!["e", "mail"]);
        assert_eq!(words("HTTPStatus"), vec!["httpstatus"]);
        assert_eq!(words("address_line1"), vec!["address", "line"]);
    }

    #[test]
    fn hints_in_several_languages_and_their_negations() {
        let k = |n: &str| hint(n).map(|h| h.0);
        assert_eq!(k("email"), Some(Kind::Email));
        assert_eq!(k("contactEmail"), Some(Kind::Email));
        assert_eq!(k("Telefonnummer"), Some(Kind::Phone));
        assert_eq!(k("ip_address"), Some(Kind::IpAddress));
        assert_eq!(k("date_of_birth"), Some(Kind::BirthDate));
        assert_eq!(k("geburtsdatum"), Some(Kind::BirthDate));
        assert_eq!(k("vorname"), Some(Kind::FirstName));
        assert_eq!(k("surname"), Some(Kind::LastName));
        assert_eq!(k("ship_postal_code"), Some(Kind::PostalCode));
        assert_eq!(k("password_hash"), Some(Kind::Secret));
        assert_eq!(k("email_hash"), None);
        assert_eq!(k("email_verified"), None);
        assert_eq!(k("phone_type"), None);
        assert_eq!(k("is_email_confirmed"), None);
        assert_eq!(k("shipping"), None);
        assert_eq!(k("description"), None);
        assert_eq!(hint("customer_name"), Some((Kind::FullName, false)));
        assert_eq!(hint("product_name"), Some((Kind::FullName, true)));
        assert_eq!(k("first"), None);
        assert_eq!(k("full_name"), Some(Kind::FullName));
        // Compound names, as AdventureWorks writes them.
        assert_eq!(k("phonenumbertypeid"), None);
        assert_eq!(k("creditcardid"), None);
        assert_eq!(k("creditcardapprovalcode"), None);
        assert_eq!(k("phonenumber"), Some(Kind::Phone));
        assert_eq!(k("postalcode"), Some(Kind::PostalCode));
        assert_eq!(k("passwordhash"), Some(Kind::Secret));
        assert_eq!(k("emailaddress"), Some(Kind::Email));
        assert_eq!(k("nationalidnumber"), Some(Kind::NationalId));
        assert_eq!(k("lname"), Some(Kind::LastName));
    }
}
