"""Number formats for Simplified Chinese that override Django's own.

Django's zh_Hans formats leave the thousands separator empty, so the
dashboard showed 4274 in Chinese and 4,274 in English. CLDR's Chinese
number pattern (#,##0.###) groups by three digits with a comma, as
Chinese software and finance pages do. The other formats come from Django.
"""

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
