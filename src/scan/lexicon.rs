//! Words the scanner recognises in values: personal names and cities (the masking lists plus
//! common names of many languages), street words, and honorifics. Matching is on lower-cased
//! whole words.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::mask::lists;

#[rustfmt::skip]
const MORE_FIRST_NAMES: &[&str] = &[
    "james", "john", "robert", "michael", "william", "david", "richard", "joseph", "thomas",
    "charles", "mary", "patricia", "jennifer", "linda", "elizabeth", "barbara", "susan", "jessica",
    "sarah", "karen", "nancy", "lisa", "betty", "margaret", "sandra", "ashley", "kimberly", "emily",
    "donna", "michelle", "carol", "amanda", "melissa", "deborah", "stephanie", "rebecca", "laura",
    "sharon", "cynthia", "kathleen", "amy", "angela", "anna", "brenda", "pamela", "nicole", "emma",
    "samantha", "katherine", "christine", "helen", "debra", "rachel", "carolyn", "janet", "maria",
    "catherine", "heather", "diane", "olivia", "julie", "joyce", "victoria", "ruth", "virginia",
    "lauren", "kelly", "christina", "joan", "evelyn", "judith", "andrea", "hannah", "megan",
    "cheryl", "jacqueline", "martha", "madison", "teresa", "gloria", "sara", "janice", "ann",
    "kathryn", "abigail", "sophia", "frances", "jean", "alice", "judy", "isabella", "julia",
    "grace", "amber", "denise", "danielle", "marilyn", "beverly", "charlotte", "natalie", "theresa",
    "diana", "brittany", "doris", "kayla", "alexis", "lori", "marie", "daniel", "matthew",
    "anthony", "mark", "donald", "steven", "paul", "andrew", "joshua", "kenneth", "kevin", "brian",
    "george", "timothy", "ronald", "edward", "jason", "jeffrey", "ryan", "jacob", "gary",
    "nicholas", "eric", "jonathan", "stephen", "larry", "justin", "scott", "brandon", "benjamin",
    "samuel", "gregory", "alexander", "frank", "patrick", "raymond", "jack", "dennis", "jerry",
    "tyler", "aaron", "jose", "adam", "nathan", "henry", "douglas", "zachary", "peter", "kyle",
    "ethan", "walter", "noah", "jeremy", "christian", "keith", "roger", "terry", "gerald", "harold",
    "sean", "austin", "carl", "arthur", "lawrence", "dylan", "jesse", "jordan", "bryan", "billy",
    "joe", "bruce", "gabriel", "logan", "albert", "willie", "alan", "juan", "wayne", "elijah",
    "randy", "roy", "vincent", "ralph", "eugene", "russell", "bobby", "mason", "philip", "louis",
    "hans", "klaus", "jürgen", "wolfgang", "dieter", "uwe", "stefan", "andreas", "sabine", "ursula",
    "monika", "petra", "birgit", "katrin", "lukas", "leon", "felix", "jonas", "lena", "lea", "mia",
    "hanna", "jean", "pierre", "michel", "philippe", "alain", "nicolas", "françois", "camille",
    "chloé", "léa", "manon", "inès", "hugo", "lucas", "louis", "antoine", "mathieu", "giuseppe",
    "giovanni", "antonio", "mario", "luigi", "francesco", "alessandro", "marco", "giulia",
    "francesca", "chiara", "sofia", "aurora", "alessia", "carlos", "javier", "miguel", "alejandro",
    "pablo", "manuel", "sergio", "lucía", "carmen", "isabel", "pilar", "elena", "laura", "marta",
    "joão", "pedro", "tiago", "beatriz", "ana", "inês", "mariana", "jan", "piet", "kees", "sanne",
    "femke", "daan", "sven", "lars", "anders", "erik", "nils", "ingrid", "astrid", "sigrid",
    "freya", "piotr", "krzysztof", "tomasz", "agnieszka", "katarzyna", "małgorzata", "ivan",
    "dmitri", "sergei", "olga", "natalia", "tatiana", "svetlana", "mohammed", "muhammad", "ali",
    "omar", "fatima", "aisha", "yusuf", "mustafa", "mehmet", "ayşe", "emine", "wei", "li", "jing",
    "ming", "hiroshi", "takeshi", "yuki", "sakura", "haruto", "yuna", "ji-ho", "min-jun",
    "seo-yeon", "raj", "priya", "amit", "anjali", "rahul", "sunita", "kwame", "kofi", "ama",
    "chinedu", "ngozi", "thabo", "zanele", "jorge", "luis", "diego", "valentina", "camila",
    "santiago", "mateo", "martina", "gabriela",
];

#[rustfmt::skip]
const MORE_LAST_NAMES: &[&str] = &[
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor", "moore",
    "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez", "clark",
    "ramirez", "lewis", "robinson", "walker", "young", "allen", "king", "wright", "scott", "torres",
    "nguyen", "hill", "flores", "green", "adams", "nelson", "baker", "hall", "rivera", "campbell",
    "mitchell", "carter", "roberts", "gomez", "phillips", "evans", "turner", "diaz", "parker",
    "cruz", "edwards", "collins", "reyes", "stewart", "morris", "morales", "murphy", "cook",
    "rogers", "gutierrez", "ortiz", "morgan", "cooper", "peterson", "bailey", "reed", "kelly",
    "howard", "ramos", "kim", "cox", "ward", "richardson", "watson", "brooks", "chavez", "wood",
    "james", "bennett", "gray", "mendoza", "ruiz", "hughes", "price", "alvarez", "castillo",
    "sanders", "patel", "myers", "long", "ross", "foster", "jimenez", "powell", "müller", "schmidt",
    "schneider", "fischer", "weber", "meyer", "wagner", "becker", "schulz", "hoffmann", "schäfer",
    "koch", "bauer", "richter", "klein", "wolf", "schröder", "neumann", "schwarz", "zimmermann",
    "braun", "krüger", "hofmann", "hartmann", "lange", "martin", "bernard", "dubois", "thomas",
    "robert", "richard", "petit", "durand", "leroy", "moreau", "simon", "laurent", "lefebvre",
    "michel", "fontaine", "rossi", "russo", "ferrari", "esposito", "bianchi", "romano", "colombo",
    "ricci", "marino", "greco", "bruno", "gallo", "conti", "costa", "giordano", "fernández",
    "gonzález", "rodríguez", "lópez", "martínez", "sánchez", "pérez", "gómez", "díaz", "moreno",
    "muñoz", "álvarez", "romero", "alonso", "navarro", "silva", "santos", "oliveira", "souza",
    "pereira", "ferreira", "almeida", "carvalho", "de jong", "jansen", "de vries", "van den berg",
    "van dijk", "bakker", "visser", "smit", "meijer", "mulder", "de boer", "johansson", "andersson",
    "karlsson", "nilsson", "eriksson", "larsson", "olsen", "hansen", "nielsen", "jensen",
    "pedersen", "nowak", "kowalski", "wiśniewski", "wójcik", "kowalczyk", "ivanov", "smirnov",
    "kuznetsov", "popov", "petrov", "yilmaz", "kaya", "demir", "şahin", "çelik", "wang", "zhang",
    "liu", "chen", "yang", "huang", "zhao", "wu", "zhou", "sato", "suzuki", "takahashi", "tanaka",
    "watanabe", "ito", "yamamoto", "nakamura", "park", "choi", "jung", "kang", "cho", "singh",
    "kumar", "sharma", "gupta", "shah", "khan", "ahmed", "hassan", "hussein", "mensah", "okafor",
    "adeyemi", "okeke", "nkosi", "dlamini", "o'brien", "o'connor", "murray", "kennedy", "byrne",
    "ryan", "walsh", "mcdonald", "macdonald", "fraser",
];

#[rustfmt::skip]
const MORE_CITIES: &[&str] = &[
    "new york", "los angeles", "chicago", "houston", "phoenix", "philadelphia", "san antonio",
    "san diego", "dallas", "san jose", "boston", "seattle", "denver", "miami", "atlanta",
    "portland", "detroit", "baltimore", "london", "manchester", "birmingham", "glasgow",
    "edinburgh", "liverpool", "leeds", "bristol", "paris", "lyon", "marseille", "toulouse", "nice",
    "nantes", "lille", "berlin", "hamburg", "munich", "münchen", "köln", "cologne", "frankfurt",
    "stuttgart", "düsseldorf", "leipzig", "dresden", "madrid", "barcelona", "valencia", "sevilla",
    "seville", "zaragoza", "málaga", "rome", "roma", "milan", "milano", "naples", "napoli", "turin",
    "torino", "florence", "firenze", "venice", "lisbon", "lisboa", "porto", "amsterdam",
    "rotterdam", "utrecht", "the hague", "brussels", "bruxelles", "vienna", "wien", "zurich",
    "zürich", "geneva", "genève", "bern", "basel", "copenhagen", "stockholm", "oslo", "helsinki",
    "dublin", "cork", "warsaw", "warszawa", "kraków", "prague", "praha", "budapest", "bucharest",
    "sofia", "athens", "istanbul", "ankara", "moscow", "kyiv", "tokyo", "osaka", "kyoto", "seoul",
    "busan", "beijing", "shanghai", "shenzhen", "guangzhou", "hong kong", "singapore", "bangkok",
    "jakarta", "manila", "mumbai", "delhi", "new delhi", "bangalore", "chennai", "kolkata",
    "karachi", "lahore", "dubai", "cairo", "lagos", "nairobi", "johannesburg", "cape town",
    "casablanca", "toronto", "montreal", "vancouver", "ottawa", "mexico city", "guadalajara",
    "monterrey", "bogotá", "lima", "santiago", "buenos aires", "são paulo", "rio de janeiro",
    "sydney", "melbourne", "brisbane", "perth", "auckland", "wellington", "london", "albuquerque",
    "sacramento", "kansas city", "nashville", "memphis", "louisville", "milwaukee", "tucson",
    "fresno", "mesa", "omaha", "raleigh", "cleveland", "tampa", "orlando", "pittsburgh",
    "cincinnati", "st. louis", "minneapolis", "new orleans", "salt lake city", "las vegas",
    "san francisco", "oakland", "charlotte", "indianapolis", "columbus", "jacksonville",
    "fort worth", "el paso", "washington", "anchorage",
];

#[rustfmt::skip]
pub const STREET_WORDS: &[&str] = &[
    "street", "st", "avenue", "ave", "av", "road", "rd", "lane", "ln", "drive", "dr", "boulevard",
    "blvd", "way", "court", "ct", "place", "pl", "terrace", "circle", "cir", "square", "sq",
    "highway", "hwy", "parkway", "pkwy", "alley", "close", "crescent", "row", "trail", "walk",
    "strasse", "straße", "str", "weg", "gasse", "platz", "allee", "ring", "damm", "calle",
    "avenida", "plaza", "paseo", "camino", "carrer", "rua", "travessa", "rue", "avenue", "chemin",
    "impasse", "quai", "via", "viale", "piazza", "corso", "vicolo", "straat", "laan", "gracht",
    "plein", "gatan", "gata", "vej", "ulica", "ul", "apt", "suite", "unit",
];

/// Endings of compound street names: `Hauptstraße`, `Kerkstraat`, `Storgatan`.
#[rustfmt::skip]
pub const STREET_ENDINGS: &[&str] = &[
    "straße", "strasse", "str", "weg", "gasse", "platz", "allee", "straat", "laan", "gatan", "vej",
    "veien",
];

/// Honorifics ignored in full names.
#[rustfmt::skip]
pub const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "miss", "dr", "prof", "sir", "herr", "frau", "m", "mme", "sr", "sra", "dott",
    "jr",
];

pub fn first_names() -> &'static HashSet<String> {
    static CELL: OnceLock<HashSet<String>> = OnceLock::new();
    set(&CELL, &[lists::FIRST_NAMES, MORE_FIRST_NAMES])
}

pub fn last_names() -> &'static HashSet<String> {
    static CELL: OnceLock<HashSet<String>> = OnceLock::new();
    set(&CELL, &[lists::LAST_NAMES, MORE_LAST_NAMES])
}

pub fn cities() -> &'static HashSet<String> {
    static CELL: OnceLock<HashSet<String>> = OnceLock::new();
    set(&CELL, &[lists::CITIES, MORE_CITIES])
}

pub fn street_words() -> &'static HashSet<String> {
    static CELL: OnceLock<HashSet<String>> = OnceLock::new();
    set(&CELL, &[STREET_WORDS])
}

/// Cached sets built from static lists, lower-cased.
fn set(cell: &'static OnceLock<HashSet<String>>, lists: &[&[&str]]) -> &'static HashSet<String> {
    cell.get_or_init(|| {
        lists
            .iter()
            .flat_map(|l| l.iter())
            .map(|s| s.to_lowercase())
            .collect()
    })
}
