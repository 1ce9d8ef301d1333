{#- A JSON-Schema interpreter for the keywords schemas/meta.schema.json uses (patterns full-matched, as handoff.schemas does: a trailing newline never passes). Every keyword is
    applied on its own, as jsonschema does, so both enforcers give the same (code, path) verdicts.
    Returns a list of {code, path, message}; `path` is dotted from the meta root ('' is the root). -#}
{% macro handoff_schema_issues(schema, instance, path, root) -%}
  {%- set issues = [] -%}
  {%- if schema is sameas false -%}
    {%- do issues.append({'code': 'HO101', 'path': path, 'message': "this key is not allowed here: remove it"}) -%}
    {{ return(issues) }}
  {%- elif schema is sameas true -%}
    {{ return(issues) }}
  {%- endif -%}
  {%- set known_keywords = ['$ref', 'type', 'properties', 'patternProperties', 'additionalProperties', 'required',
                            'pattern', 'enum', 'minimum', 'maximum', 'minLength', 'maxLength',
                            'description', 'title', '$schema', '$id', 'default', 'examples', '$comment'] -%}
  {%- for keyword in schema if keyword not in known_keywords -%}
    {%- do exceptions.raise_compiler_error("handoff: the meta schema uses '" ~ keyword ~ "', which the handoff macros do not implement (at " ~ (path or 'the root') ~ ")") -%}
  {%- endfor -%}

  {%- if '$ref' in schema -%}
    {%- do issues.extend(handoff.handoff_schema_issues(handoff.handoff_schema_resolve(root, schema['$ref']), instance, path, root)) -%}
  {%- endif -%}

  {%- if 'type' in schema -%}
    {%- set wanted = schema['type'] if schema['type'] is not string else [schema['type']] -%}
    {%- set matches = [] -%}
    {%- for type_name in wanted if handoff.handoff_json_is(instance, type_name) -%}{%- do matches.append(type_name) -%}{%- endfor -%}
    {%- if not matches -%}
      {%- do issues.append({'code': 'HO102', 'path': path,
            'message': 'expected ' ~ (wanted | join(' or ')) ~ (' (no quotes)' if instance is string and 'string' not in wanted else '')
                       ~ '; got ' ~ handoff.handoff_json_type(instance) ~ ' ' ~ tojson(instance)
                       ~ (' (quote it in YAML: unquoted 12:30 is read as the number 750)'
                          if wanted == ['string'] and handoff.handoff_json_is(instance, 'number') else '')}) -%}
    {%- endif -%}
  {%- endif -%}

  {%- if instance is mapping -%}
    {%- set properties = schema.get('properties', {}) -%}
    {%- set pattern_properties = schema.get('patternProperties', {}) -%}
    {%- for key in instance -%}
      {%- set child = key if not path else path ~ '.' ~ key -%}
      {%- set matched = namespace(any=key in properties) -%}
      {%- if key in properties -%}
        {%- do issues.extend(handoff.handoff_schema_issues(properties[key], instance[key], child, root)) -%}
      {%- endif -%}
      {%- for pattern, sub in pattern_properties.items() if modules.re.fullmatch(pattern, key | string) -%}
        {%- set matched.any = true -%}
        {%- if sub is sameas false -%}
          {#- e.g. a misspelt root key such as handoff_pipline: name the keys that are read here -#}
          {%- set allowed = properties.keys() | list | sort -%}
          {%- do issues.append({'code': 'HO101', 'path': child,
                'message': "unknown key '" ~ key ~ "'" ~ handoff.handoff_did_you_mean(key | string, allowed)
                           ~ ': fix its spelling or remove it; handoff reads here: ' ~ allowed | join(', ')}) -%}
        {%- else -%}
          {%- do issues.extend(handoff.handoff_schema_issues(sub, instance[key], child, root)) -%}
        {%- endif -%}
      {%- endfor -%}
      {%- if not matched.any and 'additionalProperties' in schema -%}
        {%- if schema['additionalProperties'] is sameas false -%}
          {%- set allowed = properties.keys() | list | sort -%}
          {%- do issues.append({'code': 'HO101', 'path': child,
                'message': "unknown key '" ~ key ~ "'" ~ handoff.handoff_did_you_mean(key | string, allowed)
                           ~ ': fix its spelling or remove it; '
                           ~ ('allowed: ' ~ allowed | join(', ') if allowed else 'expected ' ~ schema.get('description', 'no keys'))}) -%}
        {%- else -%}
          {%- do issues.extend(handoff.handoff_schema_issues(schema['additionalProperties'], instance[key], child, root)) -%}
        {%- endif -%}
      {%- endif -%}
    {%- endfor -%}
    {%- for key in schema.get('required', []) if key not in instance -%}
      {%- do issues.append({'code': 'HO104', 'path': key if not path else path ~ '.' ~ key,
            'message': "required key '" ~ key ~ "' is missing: add it" ~ (' under ' ~ path if path else '')}) -%}
    {%- endfor -%}
  {%- endif -%}

  {%- if instance is string -%}
    {%- if 'pattern' in schema and modules.re.fullmatch(schema['pattern'], instance) is none -%}
      {%- do issues.append({'code': 'HO103', 'path': path,
            'message': 'expected ' ~ (schema['description'] ~ (' (pattern ' ~ schema['pattern'] ~ ')' if schema['pattern'] | length <= 60 else '')
                                      if schema.get('description') else 'a value matching ' ~ schema['pattern'])
                       ~ '; got ' ~ tojson(instance)}) -%}
    {%- endif -%}
    {%- if 'minLength' in schema and instance | length < schema['minLength'] -%}
      {%- do issues.append({'code': 'HO106', 'path': path,
            'message': 'expected at least ' ~ schema['minLength'] ~ ' character(s); got ' ~ tojson(instance)}) -%}
    {%- endif -%}
    {%- if 'maxLength' in schema and instance | length > schema['maxLength'] -%}
      {%- do issues.append({'code': 'HO106', 'path': path,
            'message': 'expected at most ' ~ schema['maxLength'] ~ ' characters; got ' ~ instance | length ~ ' characters'}) -%}
    {%- endif -%}
  {%- endif -%}

  {%- if handoff.handoff_json_is(instance, 'number') -%}
    {%- if 'minimum' in schema and instance < schema['minimum'] -%}
      {%- do issues.append({'code': 'HO106', 'path': path,
            'message': 'expected at least ' ~ schema['minimum'] ~ '; got ' ~ instance}) -%}
    {%- endif -%}
    {%- if 'maximum' in schema and instance > schema['maximum'] -%}
      {%- do issues.append({'code': 'HO106', 'path': path,
            'message': 'expected at most ' ~ schema['maximum'] ~ '; got ' ~ instance}) -%}
    {%- endif -%}
  {%- endif -%}

  {%- if 'enum' in schema -%}
    {%- set found = namespace(any=false) -%}
    {%- for option in schema['enum'] if handoff.handoff_json_equal(instance, option) -%}{%- set found.any = true -%}{%- endfor -%}
    {%- if not found.any -%}
      {%- do issues.append({'code': 'HO105', 'path': path,
            'message': 'expected one of ' ~ schema['enum'] | map('tojson') | join(', ') ~ '; got ' ~ tojson(instance)}) -%}
    {%- endif -%}
  {%- endif -%}
  {{ return(issues) }}
{%- endmacro %}
