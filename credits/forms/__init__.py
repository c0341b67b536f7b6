import re

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class LanguageForm(forms.Form):
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)


# Digits 0-9 only. Python reads "５０", "١٠٠" and "1e5" as numbers, but an amount typed in
# another script or in exponent form is more likely a slip than meant: refuse it, naming
# the field, rather than charge or store a number the person did not see.
PLAIN_INTEGER = re.compile(r"[+-]?[0-9]+")
PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")


class PlainIntegerField(forms.IntegerField):
    def to_python(self, value):
        if value not in self.empty_values and not PLAIN_INTEGER.fullmatch(str(value).strip()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class PlainDecimalField(forms.DecimalField):
    def to_python(self, value):
        if value not in self.empty_values and not PLAIN_DECIMAL.fullmatch(str(value).strip()):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)
