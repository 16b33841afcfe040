"""Word pools for synthetic people, companies and places. Plain tuples: the generator draws from them
column-wise with `random.choices`, which is what makes a million leads cheap."""

from __future__ import annotations

FIRST_NAMES = (
    "Aiko", "Alex", "Amara", "Ana", "Andrea", "Arjun", "Ben", "Camila", "Carlos", "Chen", "Chloe", "Daniel",
    "David", "Diego", "Elena", "Emma", "Fatima", "Felix", "Grace", "Hana", "Hannah", "Hiroshi", "Ines", "Isabel",
    "Ivan", "Jack", "James", "Jana", "Javier", "Jin", "Julia", "Kai", "Karan", "Katarzyna", "Laura", "Leila",
    "Liam", "Lina", "Lucas", "Luis", "Maja", "Marco", "Maria", "Mateo", "Mei", "Mia", "Michael", "Nadia",
    "Noah", "Nora", "Olivia", "Omar", "Pablo", "Priya", "Rafael", "Rahul", "Rosa", "Sam", "Sara", "Sofia",
    "Sven", "Tariq", "Thomas", "Valentina", "Victor", "Yara", "Yuki", "Zoe", "Zoë", "Søren",
)
LAST_NAMES = (
    "Abe", "Andersen", "Bauer", "Becker", "Brown", "Castro", "Chen", "Costa", "Dubois", "Fernandes", "Fischer",
    "Garcia", "Gomez", "Gupta", "Hansen", "Hoffmann", "Ito", "Jansen", "Johnson", "Kim", "Kowalski", "Kumar",
    "Larsen", "Lee", "Lopez", "Martin", "Meyer", "Moreau", "Müller", "Nakamura", "Nguyen", "Novak", "O'Brien",
    "Patel", "Pereira", "Petrov", "Rossi", "Santos", "Sato", "Schmidt", "Silva", "Singh", "Smith", "Suzuki",
    "Tanaka", "Taylor", "Wagner", "Walsh", "Wang", "Weber", "Williams", "Wilson", "Yamamoto", "Zhang",
)

#: Buyer personas and the titles that signal them.
TITLES = {
    "economic_buyer": (
        "CEO", "CFO", "CTO", "CIO", "COO", "VP Engineering", "VP Marketing", "VP Operations", "VP Sales",
        "Head of IT", "Director of Engineering", "Director of Operations", "Managing Director",
    ),
    "technical_evaluator": (
        "Solutions Architect", "Engineering Manager", "Lead Developer", "IT Manager", "Security Architect",
        "Data Architect", "Principal Engineer", "Platform Lead", "Marketing Operations Manager",
    ),
    "practitioner": (
        "Software Engineer", "Data Analyst", "DevOps Engineer", "Marketing Specialist", "Product Manager",
        "QA Engineer", "Sales Operations Analyst", "Business Analyst", "Site Reliability Engineer",
        "Growth Marketer", "Support Engineer",
    ),
}
PERSONAS = ("economic_buyer", "technical_evaluator", "practitioner")
PERSONA_WEIGHTS = (18, 32, 50)

INDUSTRIES = (
    "Software", "Financial Services", "Healthcare", "Manufacturing", "Retail", "Education", "Logistics",
    "Media", "Energy", "Government", "Telecommunications", "Insurance",
)
INDUSTRY_WEIGHTS = (20, 12, 10, 10, 8, 6, 6, 5, 5, 4, 7, 7)

#: (country, city, IANA time zone, weight, legal suffix for company names)
LOCATIONS = (
    ("United States", "New York", "America/New_York", 10, "Inc."),
    ("United States", "Boston", "America/New_York", 4, "Inc."),
    ("United States", "Chicago", "America/Chicago", 5, "LLC"),
    ("United States", "Austin", "America/Chicago", 4, "Inc."),
    ("United States", "Denver", "America/Denver", 3, "LLC"),
    ("United States", "San Francisco", "America/Los_Angeles", 8, "Inc."),
    ("United States", "Seattle", "America/Los_Angeles", 4, "Inc."),
    ("Canada", "Toronto", "America/Toronto", 4, "Inc."),
    ("Canada", "Vancouver", "America/Vancouver", 2, "Ltd."),
    ("Brazil", "São Paulo", "America/Sao_Paulo", 3, "Ltda."),
    ("United Kingdom", "London", "Europe/London", 8, "Ltd"),
    ("United Kingdom", "Manchester", "Europe/London", 2, "Ltd"),
    ("Ireland", "Dublin", "Europe/Dublin", 2, "Ltd"),
    ("Germany", "Berlin", "Europe/Berlin", 5, "GmbH"),
    ("Germany", "Munich", "Europe/Berlin", 3, "GmbH"),
    ("France", "Paris", "Europe/Paris", 4, "SAS"),
    ("Netherlands", "Amsterdam", "Europe/Amsterdam", 3, "B.V."),
    ("Spain", "Madrid", "Europe/Madrid", 2, "S.L."),
    ("Sweden", "Stockholm", "Europe/Stockholm", 2, "AB"),
    ("India", "Bengaluru", "Asia/Kolkata", 4, "Pvt Ltd"),
    ("Japan", "Tokyo", "Asia/Tokyo", 3, "K.K."),
    ("Singapore", "Singapore", "Asia/Singapore", 2, "Pte. Ltd."),
    ("Australia", "Sydney", "Australia/Sydney", 3, "Pty Ltd"),
    ("Australia", "Melbourne", "Australia/Melbourne", 2, "Pty Ltd"),
)
#: Which rep group covers which countries (round-robin assignment territories).
REGIONS = {
    "AMER": ("United States", "Canada", "Brazil"),
    "EMEA": ("United Kingdom", "Ireland", "Germany", "France", "Netherlands", "Spain", "Sweden"),
    "APAC": ("India", "Japan", "Singapore", "Australia"),
}

COMPANY_PREFIXES = (
    "North", "Blue", "Bright", "Silver", "Iron", "Green", "Red", "Swift", "Clear", "Summit", "Harbor", "Pine",
    "Quantum", "Nova", "Atlas", "Vertex", "Cedar", "Falcon", "Orbit", "Pioneer", "Lumen", "Sterling", "Crescent",
    "Granite", "Maple", "Aurora", "Beacon", "Cobalt", "Delta", "Ember", "Fjord", "Helix", "Juniper", "Keystone",
    "Lattice", "Meridian", "Nimbus", "Onyx", "Polar", "Radiant", "Sable", "Tidal", "Umber", "Vantage", "Willow",
)
COMPANY_ROOTS = (
    "wind", "stone", "field", "bridge", "point", "gate", "path", "forge", "wave", "peak", "line", "works",
    "leaf", "light", "spark", "stream", "crest", "haven", "ridge", "port", "core", "mark", "shift", "grid",
    "loop", "scale", "sky", "tree", "well", "wing",
)
COMPANY_KINDS = (
    "Analytics", "Systems", "Labs", "Health", "Logistics", "Media", "Energy", "Capital", "Robotics", "Foods",
    "Software", "Networks", "Retail", "Insurance", "Learning", "Partners", "Dynamics", "Cloud", "Security",
    "Manufacturing",
)
COMPANY_AREAS = ("", "Global", "Europe", "Americas", "Asia", "Group", "Holdings", "International", "Digital", "One")

LEAD_SOURCES = (
    "Web", "Webinar", "Trade Show", "Content Syndication", "Paid Search", "Organic Search", "Referral",
    "Partner", "Social", "Event",
)
LEAD_SOURCE_WEIGHTS = (22, 12, 8, 10, 12, 16, 6, 6, 5, 3)

STAGES = ("awareness", "consideration", "decision", "customer")
STAGE_WEIGHTS = (55, 28, 12, 5)
#: Salesforce lead status by funnel stage.
STATUS_BY_STAGE = {
    "awareness": "Open - Not Contacted",
    "consideration": "Working - Contacted",
    "decision": "Working - Contacted",
    "customer": "Closed - Converted",
}

#: Pages a lead visits or clicks through to; the pricing pages are what scoring rewards most.
URLS = (
    "https://www.example.com/", "https://www.example.com/pricing", "https://www.example.com/product",
    "https://www.example.com/product/integrations", "https://www.example.com/customers",
    "https://www.example.com/blog/nurture-playbook", "https://www.example.com/blog/lead-scoring-101",
    "https://www.example.com/docs/getting-started", "https://www.example.com/webinars/q3-roadmap",
    "https://www.example.com/demo", "https://www.example.com/security", "https://www.example.com/pricing/enterprise",
)
URL_WEIGHTS = (10, 6, 8, 4, 4, 8, 6, 5, 3, 2, 3, 2)
FORMS = ("Contact us", "Demo request", "Webinar registration", "Whitepaper download", "Newsletter signup")
FORM_WEIGHTS = (3, 2, 4, 6, 5)

CAMPAIGNS = (
    ("Q1 Webinar: Nurture at Scale", "Webinar"), ("Spring Trade Show", "Trade Show"),
    ("Lead Scoring Whitepaper", "Content"), ("Paid Search — Brand", "Advertisement"),
    ("Customer Stories Newsletter", "Email"), ("Partner Co-Marketing", "Partners"),
    ("Summer Roadshow", "Event"), ("Product Launch 2026", "Email"), ("Analyst Report", "Content"),
    ("Executive Dinner Series", "Event"), ("Developer Meetup", "Event"), ("Free Trial Push", "Advertisement"),
)
CAMPAIGN_STATUSES = ("Sent", "Registered", "Attended", "Responded")

OPPORTUNITY_STAGES = ("Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost")

REP_NAMES = (
    "Rita Alvarez", "Sam Okafor", "Priya Raman", "Tom Becker", "Lena Fischer", "Marco Rossi", "Aiko Tanaka",
    "Noah Williams", "Chloe Martin", "Daniel Kim", "Sofia Costa", "Arjun Mehta",
)
